package pairing

import (
	"bytes"
	"testing"

	"github.com/zyre-go/zyre/curve"
)

// FuzzWireMessage feeds arbitrary multipart messages, as they arrive from
// the network, through the parsers a pairing peer runs on them: the
// envelope, an ERR's reason, a peer's binding and name, and a CPace share.
// None may panic; whatever parses must satisfy the field counts.
func FuzzWireMessage(f *testing.F) {
	sep := []byte{0}
	join := func(frames ...[]byte) []byte { return bytes.Join(frames, sep) }
	f.Add(join([]byte(protoTag), []byte(cmdBye)))
	f.Add(join([]byte(protoTag), []byte(cmdErr), []byte("expired"), []byte("the token expired")))
	f.Add(join([]byte(protoTag), []byte(cmdQRProof), make([]byte, 16), make([]byte, 32), []byte("binding"), []byte("alice")))
	f.Add(join([]byte(protoTag), []byte(cmdCodeA), make([]byte, 16), bytes.Repeat([]byte{0xff}, 32)))
	f.Add(join([]byte(protoTag), []byte(cmdMe), make([]byte, 32), []byte{0x13, 0x88}))
	f.Add(join([]byte("ZPAIR0"), []byte(cmdBye)))
	f.Add([]byte{})

	pub, _, err := curve.GenerateKeyPair(nil)
	if err != nil {
		f.Fatal(err)
	}
	party, err := newCPaceParty(nil, []byte("123456789012"), cpaceCI(pub.Bytes(), pub.Bytes()), make([]byte, 16))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		frames := bytes.Split(data, sep)
		cmd, fields, err := parseMsg(frames)
		if err != nil {
			return
		}
		if n := fieldCount[cmd]; len(fields) != n {
			t.Fatalf("parseMsg(%q) gave %d fields, want %d", cmd, len(fields), n)
		}
		switch cmd {
		case cmdErr:
			if remoteErr(fields) == nil {
				t.Fatal("remoteErr returned nil")
			}
		case cmdQRProof, cmdQRConfirm, cmdCodeB, cmdCodeC:
			binding, name := fields[len(fields)-2], fields[len(fields)-1]
			if _, err := checkPeerInfo(binding, name, pub); err == nil {
				t.Fatalf("a random binding verified for a fresh key: %x", binding)
			}
		}
		for _, fld := range fields {
			if k, err := party.sharedK(fld); err == nil && len(k) != cpaceElemSize {
				t.Fatalf("sharedK gave %d octets", len(k))
			}
		}
	})
}
