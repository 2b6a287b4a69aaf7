package privgroup

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"fmt"
	"hash"
	"runtime"

	"github.com/zeebo/blake3"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/sys/cpu"
)

// Suite names the algorithms of one sender epoch: the AEAD that seals its
// data messages and the hash over which its batch records are signed. The
// sender picks it (Options.Suite) and names it in each sender key; every
// receiver opens both. Everything else (ratchet, key id, sender-key box,
// Ed25519) is the same in both suites.
type Suite uint8

const (
	// SuiteAuto, in Options, picks PreferredSuite(DefaultChunkSize).
	SuiteAuto Suite = 0
	// SuiteChaCha20SHA256 is ChaCha20-Poly1305 with SHA-256: fast on every
	// CPU, the one for machines without AES and SIMD hardware.
	SuiteChaCha20SHA256 Suite = 1
	// SuiteAESGCMBLAKE3 is AES-256-GCM with BLAKE3-256: about twice as fast
	// per octet on x86-64 with AES-NI, CLMUL and AVX2, slower without them.
	SuiteAESGCMBLAKE3 Suite = 2
)

// String names the suite.
func (s Suite) String() string {
	switch s {
	case SuiteAuto:
		return "auto"
	case SuiteChaCha20SHA256:
		return "chacha20poly1305-sha256"
	case SuiteAESGCMBLAKE3:
		return "aes256gcm-blake3"
	}
	return fmt.Sprintf("suite(%d)", uint8(s))
}

// ParseSuite returns the suite that String names ("auto" included).
func ParseSuite(name string) (Suite, error) {
	for _, s := range []Suite{SuiteAuto, SuiteChaCha20SHA256, SuiteAESGCMBLAKE3} {
		if name == s.String() {
			return s, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown suite %q, want %s, %s or %s", ErrInvalidOptions, name,
		SuiteAuto, SuiteChaCha20SHA256, SuiteAESGCMBLAKE3)
}

// known reports whether s is a suite of the wire format (not SuiteAuto).
func (s Suite) known() bool { return s == SuiteChaCha20SHA256 || s == SuiteAESGCMBLAKE3 }

// hasFastAESAndBLAKE3 is what SuiteAESGCMBLAKE3 needs to beat the other
// suite: AES-NI and carry-less multiply for GCM, AVX2 for BLAKE3.
var hasFastAESAndBLAKE3 = runtime.GOARCH == "amd64" && cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ && cpu.X86.HasAVX2

// suiteThreshold is the message size from which SuiteAESGCMBLAKE3 is the
// faster suite where it has hardware support. Below it, the AES key schedule
// and GHASH setup at every message, and BLAKE3's serial path for inputs of
// a few 1 KiB chunks, cost more than they save (BenchmarkPipeline: 1 KiB
// 3.4 against 5.8 µs per message and 4 KiB 9 against 11 µs in favour of
// ChaCha20/SHA-256; 16 KiB 1.6× and 64 KiB 1.8× in favour of
// AES-GCM/BLAKE3).
const suiteThreshold = 8 << 10

// Fast reports whether this machine seals and opens messages of suite s at
// full speed: suite 1 everywhere, suite 2 on x86-64 with AES-NI, CLMUL and
// AVX2 (elsewhere it runs, on software AES and portable BLAKE3, several
// times slower). A member tells its senders which suites are fast for it,
// so that they avoid the others.
func (s Suite) Fast() bool {
	switch s {
	case SuiteChaCha20SHA256:
		return true
	case SuiteAESGCMBLAKE3:
		return hasFastAESAndBLAKE3
	}
	return false
}

// PreferredSuite is the faster suite on this machine for messages of about
// size octets: SuiteAESGCMBLAKE3 on x86-64 with AES-NI, CLMUL and AVX2 for
// messages of 8 KiB and more, SuiteChaCha20SHA256 otherwise (Go's
// constant-time software AES is 20–40× slower than ChaCha20, and the BLAKE3
// library has SIMD code only for x86-64). Options.Suite SuiteAuto is
// PreferredSuite(DefaultChunkSize). The receivers pay for the sender's
// choice: a group whose receivers lack that hardware should use
// SuiteChaCha20SHA256.
func PreferredSuite(size int) Suite {
	if hasFastAESAndBLAKE3 && size >= suiteThreshold {
		return SuiteAESGCMBLAKE3
	}
	return SuiteChaCha20SHA256
}

// aead returns the AEAD of the suite under a message key. A new instance
// per message: every message has its own key.
func (s Suite) aead(key *[32]byte) (cipher.AEAD, error) {
	if s == SuiteAESGCMBLAKE3 {
		b, err := aes.NewCipher(key[:])
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(b)
	}
	return chacha20poly1305.New(key[:])
}

// sum is the suite's hash of one sealed message for batch records.
func (s Suite) sum(msg []byte) [32]byte {
	if s == SuiteAESGCMBLAKE3 {
		return blake3.Sum256(msg)
	}
	return sha256.Sum256(msg)
}

// newHash returns the suite's hash for the root of a batch record.
func (s Suite) newHash() hash.Hash {
	if s == SuiteAESGCMBLAKE3 {
		return blake3.New()
	}
	return sha256.New()
}
