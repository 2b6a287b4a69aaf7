package privgroup

import (
	"crypto/ed25519"
	"encoding/binary"
	"hash"
	"io"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/nacl/secretbox"

	"github.com/zyre-go/zyre/curve"
)

// Sender seals one member's messages to a private group. It holds the
// member's sender key for the current epoch (a chain key that ratchets
// forward at every message and an Ed25519 key that signs batch records)
// and the member's long-term CURVE secret key, which seals sender keys to
// other members. A Sender is not safe for concurrent use; it has no
// goroutines and does no I/O.
type Sender struct {
	group string
	id    [16]byte
	sk    curve.SecretKey
	pub   curve.PublicKey
	opts  Options
	suite Suite // of the current epoch
	next  Suite // of the epochs after it (SetSuite)

	epoch   uint32
	keyID   KeyID
	ck      [32]byte // chain key of counter
	counter uint64   // next counter to seal; 1<<32 means exhausted
	signKey ed25519.PrivateKey
	signPub [32]byte
	started time.Time
	ad      []byte

	pendFirst uint64 // first counter not yet covered by a batch record
	pendCount int
	pendBytes int // plaintext octets of the pending messages
	pendSince time.Time
	root      hash.Hash // the suite's hash over the hashes of the pending messages
	sigBuf    []byte
	closed    bool
	// Scratch space kept here because slices of it reach interface
	// methods and would otherwise escape to the heap at every message.
	nonce [nonceSize]byte
	sum   [32]byte
}

// NewSender returns a Sender for group (1..255 octets) and the member
// senderID (its ZRE UUID), whose long-term CURVE secret key is key (the
// Sender keeps its own copy). It starts the first epoch at once.
func NewSender(group string, senderID uuid.UUID, key *curve.SecretKey, opts Options) (*Sender, error) {
	if err := checkGroup(group); err != nil {
		return nil, errf("privgroup: new sender: %w", err)
	}
	if key == nil || key.IsZero() {
		return nil, errf("privgroup: new sender: %w: no secret key", ErrInvalidOptions)
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, errf("privgroup: new sender: %w", err)
	}
	s := &Sender{group: group, id: senderID, opts: o, next: o.Suite}
	s.sk, _ = curve.NewSecretKey(key.Bytes())
	s.pub = s.sk.Public()
	if err := s.newEpoch(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// newEpoch draws a new chain key and signing key and forgets the old ones.
// Epochs increase and start at the Unix time in seconds, so a restarted
// member does not reuse an epoch its peers have seen.
func (s *Sender) newEpoch() error {
	now := s.opts.Now()
	e := uint32(now.Unix())
	if s.epoch != 0 && e <= s.epoch {
		e = s.epoch + 1
	}
	if e == 0 {
		return errf("privgroup: rotate: %w: epoch counter exhausted", ErrExhausted)
	}
	var ck [32]byte
	if _, err := io.ReadFull(s.opts.Rand, ck[:]); err != nil {
		return errf("privgroup: rotate: failed to draw chain key: %w", err)
	}
	pub, priv, err := ed25519.GenerateKey(s.opts.Rand)
	if err != nil {
		clear(ck[:])
		return errf("privgroup: rotate: failed to draw signing key: %w", err)
	}
	clear(s.ck[:])
	clear(s.signKey)
	s.epoch, s.ck, s.signKey = e, ck, priv
	clear(ck[:])
	copy(s.signPub[:], pub)
	if s.root == nil || s.suite != s.next {
		s.root = s.next.newHash()
	}
	s.suite = s.next
	s.keyID = makeKeyID(s.group, s.id, e, pub)
	s.ad = newAD(s.group, s.id, e)
	s.counter, s.pendFirst, s.pendCount, s.pendBytes = 0, 0, 0, 0
	s.started = now
	s.root.Reset()
	return nil
}

// Epoch returns the current epoch.
func (s *Sender) Epoch() uint32 { return s.epoch }

// Suite returns the suite of the current epoch.
func (s *Sender) Suite() Suite { return s.suite }

// SetSuite sets the suite of the epochs after the current one: it takes
// effect at the next Rotate.
func (s *Sender) SetSuite(suite Suite) error {
	if !suite.known() {
		return errf("privgroup: set suite: %w: unknown %s", ErrInvalidOptions, suite)
	}
	s.next = suite
	return nil
}

// KeyID returns the key id of the current epoch.
func (s *Sender) KeyID() KeyID { return s.keyID }

// Counter returns the counter the next sealed message will carry.
func (s *Sender) Counter() uint64 { return s.counter }

// Seal appends to dst a data message carrying plaintext and returns the
// extended slice. It allocates nothing when dst has len(plaintext)+Overhead
// spare capacity. plaintext must not overlap that capacity. The message is
// "pending" at receivers until a batch record (Batch) covers it.
func (s *Sender) Seal(dst, plaintext []byte) ([]byte, error) {
	if err := s.checkSeal(len(plaintext)); err != nil {
		return dst, err
	}
	ret, out := sliceForAppend(dst, len(plaintext)+Overhead)
	if err := s.seal(out, plaintext); err != nil {
		return dst, err
	}
	return ret, nil
}

// sealInPlace seals the data message rec, whose plaintext is already in
// place: rec is DataHeaderSize octets of room for the header, the
// plaintext, and TagSize octets of room for the tag. The AEAD encrypts the
// plaintext where it lies (a Writer assembles each chunk there, so the
// data is copied once, from Write's argument into the record).
func (s *Sender) sealInPlace(rec []byte) error {
	n := len(rec) - Overhead
	if err := s.checkSeal(n); err != nil {
		return err
	}
	return s.seal(rec, rec[DataHeaderSize:DataHeaderSize+n])
}

// checkSeal says whether a plaintext of n octets may be sealed now.
func (s *Sender) checkSeal(n int) error {
	if s.closed {
		return errf("privgroup: seal: %w", ErrClosed)
	}
	if n > MaxPlaintext {
		return errf("privgroup: seal: %w: plaintext of %d octets, limit %d", ErrInvalidOptions, n, MaxPlaintext)
	}
	if s.counter > 0xffffffff {
		return errf("privgroup: seal: %w: epoch %d has used all counters", ErrExhausted, s.epoch)
	}
	// A batch record covers at most MaxBatch messages (the wire format),
	// and a receiver keeps at most Window/2 of them pending.
	if s.pendCount >= min(s.opts.Window/2, MaxBatch) {
		return errf("privgroup: seal: %w: %d messages not covered by a batch record; call Batch", ErrBatchFull, s.pendCount)
	}
	return nil
}

// seal writes into out (len(plaintext)+Overhead octets) the data message
// of plaintext, which is either apart from out or exactly
// out[DataHeaderSize:len(out)-TagSize] (sealed in place), hashes it once
// for the batch record and steps the chain. checkSeal passed.
func (s *Sender) seal(out, plaintext []byte) error {
	ck := s.ck
	mk := ratchet(&ck)
	aead, err := s.suite.aead(&mk)
	clear(mk[:])
	if err != nil { // cannot happen: the key is 32 octets
		clear(ck[:])
		return errf("privgroup: seal: %w", err)
	}
	s.ck = ck
	clear(ck[:])
	if s.pendCount == 0 {
		s.pendFirst = s.counter
		s.pendSince = s.opts.Now()
	}
	c := uint32(s.counter)
	putHeader(out[:DataHeaderSize], s.keyID, c)
	copy(s.ad[:DataHeaderSize], out[:DataHeaderSize])
	s.nonce = nonceOf(s.keyID, c)
	aead.Seal(out[DataHeaderSize:DataHeaderSize], s.nonce[:], plaintext, s.ad)
	s.sum = s.suite.sum(out)
	s.root.Write(s.sum[:])
	s.pendCount++
	s.pendBytes += len(plaintext)
	s.counter++
	return nil
}

// BatchDue reports whether a batch record should be made now: BatchSize
// messages or BatchBytes octets of plaintext are pending, or the oldest
// pending message is BatchInterval old.
func (s *Sender) BatchDue() bool { return s.batchDueAt(s.opts.Now()) }

func (s *Sender) batchDueAt(now time.Time) bool {
	if s.pendCount == 0 {
		return false
	}
	return s.pendCount >= s.opts.BatchSize || s.pendBytes >= s.opts.BatchBytes ||
		now.Sub(s.pendSince) >= s.opts.BatchInterval
}

// BatchDueAt returns when BatchDue becomes true by age (the oldest pending
// message then is BatchInterval old), or the zero time with nothing
// pending. A caller's timer sleeps until then instead of polling.
func (s *Sender) BatchDueAt() time.Time {
	if s.pendCount == 0 {
		return time.Time{}
	}
	return s.pendSince.Add(s.opts.BatchInterval)
}

// Pending returns how many sealed messages no batch record covers yet.
func (s *Sender) Pending() int { return s.pendCount }

// Batch appends to dst a signed batch record covering every message sealed
// since the last one and returns the extended slice; with nothing pending
// it returns dst unchanged. Send it to the group after those messages.
func (s *Sender) Batch(dst []byte) ([]byte, error) {
	if s.closed {
		return dst, errf("privgroup: batch: %w", ErrClosed)
	}
	if s.pendCount == 0 {
		return dst, nil
	}
	var head [BatchRecordSize - signatureSize]byte
	head[0] = typeBatch
	copy(head[1:], s.keyID[:])
	binary.BigEndian.PutUint32(head[1+KeyIDSize:], uint32(s.pendFirst))
	binary.BigEndian.PutUint16(head[1+KeyIDSize+4:], uint16(s.pendCount))
	var root [32]byte
	s.root.Sum(root[:0])
	s.sigBuf = batchSigned(s.sigBuf[:0], s.suite, s.group, s.id, s.epoch, head[:], &root)
	sig := ed25519.Sign(s.signKey, s.sigBuf)
	dst = append(dst, head[:]...)
	dst = append(dst, sig...)
	s.root.Reset()
	s.pendCount, s.pendBytes = 0, 0
	s.pendFirst = s.counter
	return dst, nil
}

// RotationDue reports whether the epoch has reached MaxMessages or MaxAge
// (or is close to running out of counters). Rotate then, and send the new
// sender key to every current member.
func (s *Sender) RotationDue() bool { return s.rotationDueAt(s.opts.Now()) }

func (s *Sender) rotationDueAt(now time.Time) bool {
	return s.counter >= uint64(s.opts.MaxMessages) ||
		s.counter >= 1<<32-MaxBatch ||
		now.Sub(s.started) >= s.opts.MaxAge
}

// Rotate starts a new epoch: a new random chain key and signing key; the
// old ones are erased. It appends to dst the batch record covering the old
// epoch's last messages (if any are pending), which the caller sends before
// anything of the new epoch. Then the caller sends KeyFor(m) to each
// current member, and only to them: a member that left or was revoked gets
// nothing and cannot read what follows.
func (s *Sender) Rotate(dst []byte) ([]byte, error) {
	if s.closed {
		return dst, errf("privgroup: rotate: %w", ErrClosed)
	}
	out, err := s.Batch(dst)
	if err != nil {
		return dst, err
	}
	if err := s.newEpoch(); err != nil {
		return out, err // the old epoch's record is still to be sent
	}
	return out, nil
}

// KeyFor returns a sender-key record for the member whose long-term CURVE
// public key is member: the group, epoch, sender id, the chain key at the
// current counter, this epoch's Ed25519 public key and the suite, in a
// NaCl box from our long-term key to theirs, so only that member can open
// it and it knows who made it. The member can read messages from the current counter
// on, not earlier ones. Call Batch first when the member joins in the
// middle of a stream: messages of a batch that began before its key cannot
// be authenticated by it.
func (s *Sender) KeyFor(member curve.PublicKey) ([]byte, error) {
	if s.closed {
		return nil, errf("privgroup: key for member: %w", ErrClosed)
	}
	if s.counter > 0xffffffff {
		return nil, errf("privgroup: key for member: %w", ErrExhausted)
	}
	k, err := boxKey(&s.sk, member)
	if err != nil {
		return nil, errf("privgroup: key for member %s: %w", member, err)
	}
	defer clear(k[:])
	body := senderKeyBody{
		senderKey:    s.pub.Array(),
		recipientKey: member.Array(),
		senderID:     s.id,
		epoch:        s.epoch,
		counter:      uint32(s.counter),
		chainKey:     s.ck,
		signingKey:   s.signPub,
		suite:        s.suite,
		group:        s.group,
	}
	plain := body.appendMarshal(make([]byte, 0, senderKeyBodyFixed+len(s.group)))
	clear(body.chainKey[:])
	defer clear(plain)
	out := make([]byte, 1+boxNonceSize, senderKeyMinSize+len(s.group))
	out[0] = typeSenderKey
	var nonce [boxNonceSize]byte
	if _, err := io.ReadFull(s.opts.Rand, nonce[:]); err != nil {
		return nil, errf("privgroup: key for member: failed to draw nonce: %w", err)
	}
	copy(out[1:], nonce[:])
	return secretbox.Seal(out, plain, &nonce, &k), nil
}

// Close erases the Sender's keys. Later calls fail with ErrClosed. It is
// safe to call twice.
func (s *Sender) Close() {
	s.closed = true
	s.sk.Wipe()
	clear(s.ck[:])
	clear(s.signKey)
}

// sliceForAppend extends in by n octets, reallocating only when its
// capacity is too small; tail is the n new octets.
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	tail = head[len(in):]
	return head, tail
}
