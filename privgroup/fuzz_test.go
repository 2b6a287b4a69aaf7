package privgroup

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// Every parser of records from the network has a fuzz target. Each checks
// that nothing panics, that every failure wraps one of the package's
// record sentinels, and that nothing but the genuine records is accepted.

type fuzzFixture struct {
	a, b     *member
	keyRec   []byte
	msgs     [][]byte
	plain    []string
	batchRec []byte
}

// newFuzzFixtures returns one fixture per suite.
func newFuzzFixtures(t testing.TB) []*fuzzFixture {
	var fxs []*fuzzFixture
	for _, su := range suites {
		fxs = append(fxs, newFuzzFixture(t, su))
	}
	return fxs
}

func newFuzzFixture(t testing.TB, suite Suite) *fuzzFixture {
	c := newClock()
	f := &fuzzFixture{a: newMember(t, "a", 1, testOpts(c, 11)), b: newMember(t, "b", 2, testOpts(c, 12))}
	s := f.a.sender(t, suiteOpts(c, suite, 13))
	var err error
	if f.keyRec, err = s.KeyFor(f.b.pub); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"", "one", "the video stream"} {
		f.msgs = append(f.msgs, seal(t, s, p))
		f.plain = append(f.plain, p)
	}
	f.batchRec = batch(t, s)
	return f
}

func seedAll(f *testing.F, recs ...[]byte) {
	for _, r := range recs {
		f.Add(r)
		f.Add(r[:len(r)/2])
		f.Add(r[:min(len(r), 13)])
		f.Add(append(bytes.Clone(r), 0))
	}
	f.Add([]byte{})
	f.Add([]byte{0x11})
	f.Add([]byte{0x12})
	f.Add([]byte{0x13})
}

func checkRecordErr(t *testing.T, err error) {
	t.Helper()
	if err != nil && !IsRecordError(err) {
		t.Fatalf("error wraps no record sentinel: %v", err)
	}
	if err != nil && len(err.Error()) > 300 {
		t.Fatalf("error text too long: %d", len(err.Error()))
	}
}

func FuzzParseHeader(f *testing.F) {
	for _, fx := range newFuzzFixtures(f) {
		seedAll(f, append(fx.msgs, fx.batchRec, fx.keyRec)...)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error wraps neither ErrMalformed nor ErrVersion: %v", err)
			}
			return
		}
		switch h.Kind {
		case KindData:
			if len(b) < Overhead || b[0] != typeData {
				t.Fatalf("accepted %d octets as data", len(b))
			}
		case KindBatch:
			if len(b) != BatchRecordSize || h.Count == 0 || h.Count > MaxBatch {
				t.Fatalf("accepted %d octets as batch %+v", len(b), h)
			}
		default:
			t.Fatalf("kind %v", h.Kind)
		}
		if !bytes.Equal(h.KeyID[:], b[1:1+KeyIDSize]) {
			t.Fatal("key id not from the record")
		}
	})
}

// FuzzOpen feeds a receiver holding the sender key a record after the
// genuine data messages (so batch records can complete), for a sender of
// each suite.
func FuzzOpen(f *testing.F) {
	fxs := newFuzzFixtures(f)
	for _, fx := range fxs {
		seedAll(f, append(fx.msgs, fx.batchRec)...)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, fx := range fxs {
			fuzzOpen(t, fx, b)
		}
	})
}

func fuzzOpen(t *testing.T, fx *fuzzFixture, b []byte) {
	r, err := NewReceiver(testGroup, &fx.b.sec, Options{Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.AddSenderKey(fx.keyRec, fx.a.pub); err != nil {
		t.Fatal(err)
	}
	// Fresh: a data message opens only if it is a genuine one.
	pt, info, err := r.Open(nil, b)
	checkRecordErr(t, err)
	if err == nil && info.Kind == KindData {
		i := int(info.Counter)
		if i >= len(fx.msgs) || !bytes.Equal(b, fx.msgs[i]) || string(pt) != fx.plain[i] {
			t.Fatalf("accepted a record that is not genuine: %x", b)
		}
	}
	// After the genuine messages: a batch record authenticates only if
	// it is the genuine one.
	r2, _ := NewReceiver(testGroup, &fx.b.sec, Options{Now: newClock().Now})
	if _, err := r2.AddSenderKey(fx.keyRec, fx.a.pub); err != nil {
		t.Fatal(err)
	}
	for _, m := range fx.msgs {
		if _, _, err := r2.Open(nil, m); err != nil {
			t.Fatal(err)
		}
	}
	_, info, err = r2.Open(nil, b)
	checkRecordErr(t, err)
	if err == nil && len(authenticated(info)) > 0 && !bytes.Equal(b, fx.batchRec) {
		t.Fatalf("authenticated by a record that is not genuine: %x", b)
	}
}

func FuzzAddSenderKey(f *testing.F) {
	fxs := newFuzzFixtures(f)
	for _, fx := range fxs {
		seedAll(f, fx.keyRec)
	}
	genuine := func(b []byte) bool {
		for _, fx := range fxs {
			if bytes.Equal(b, fx.keyRec) {
				return true
			}
		}
		return false
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// The fixtures share their members, so each receiver may accept
		// the genuine record of either suite, and nothing else.
		for _, fx := range fxs {
			r, err := NewReceiver(testGroup, &fx.b.sec, Options{Now: newClock().Now})
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.AddSenderKey(b, fx.a.pub)
			checkRecordErr(t, err)
			if err == nil && !genuine(b) {
				t.Fatalf("accepted a sender key that is not genuine: %x", b)
			}
		}
	})
}

// FuzzSenderKeyBody round-trips the plaintext inside a sender-key box:
// parse, marshal, same octets.
func FuzzSenderKeyBody(f *testing.F) {
	body := senderKeyBody{epoch: 7, counter: 9, suite: SuiteChaCha20SHA256, group: testGroup}
	for i := range body.chainKey {
		body.chainKey[i] = byte(i)
	}
	good := body.appendMarshal(nil)
	f.Add(good)
	f.Add(good[:senderKeyBodyFixed])
	f.Add(good[:senderKeyBodyFixed-1])
	f.Add(append(bytes.Clone(good), 'x'))
	f.Add([]byte{})
	suite2 := bytes.Clone(good)
	suite2[senderKeyBodyFixed-2] = byte(SuiteAESGCMBLAKE3)
	f.Add(suite2)
	unknown := bytes.Clone(good)
	unknown[senderKeyBodyFixed-2] = 9
	f.Add(unknown)
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := parseSenderKeyBody(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error wraps neither ErrMalformed nor ErrVersion: %v", err)
			}
			return
		}
		if out := k.appendMarshal(nil); !bytes.Equal(out, b) {
			t.Fatalf("round trip: %x, want %x", out, b)
		}
	})
}

// FuzzReader interleaves arbitrary records (the input, cut at 0xff octets)
// with a genuine stream: the Reader never panics and returns only genuine
// octets, each at its place in the stream (gaps counted exactly), since
// nothing without the sender's keys can be released. Unless the input
// holds a genuine record ahead of its place (a copy relayed faster than
// the sender's own connection: a later authenticated batch then gives up
// the earlier counters, as the spec says), it returns the whole stream.
func FuzzReader(f *testing.F) {
	c := newClock()
	a, b := newMember(f, "a", 1, testOpts(c, 11)), newMember(f, "b", 2, testOpts(c, 12))
	o := testOpts(c, 13)
	o.BatchSize = 2
	s := a.sender(f, o)
	keyRec, err := s.KeyFor(b.pub)
	if err != nil {
		f.Fatal(err)
	}
	q := &queue{}
	w, err := NewWriter(s, q.send, WriterOptions{ChunkSize: 5})
	if err != nil {
		f.Fatal(err)
	}
	data := []byte("the phone in the bar")
	w.Write(data)
	w.Close()
	genuine := q.recs
	for _, r := range genuine {
		f.Add(r)
	}
	f.Add(bytes.Join(genuine, []byte{0xff}))
	f.Add([]byte{0x11, 0xff, 0x12})
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := NewReceiver(testGroup, &b.sec, Options{Now: newClock().Now})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.AddSenderKey(keyRec, a.pub); err != nil {
			t.Fatal(err)
		}
		extra := bytes.Split(in, []byte{0xff})
		var recs [][]byte
		early := false
		for i, g := range genuine {
			if i < len(extra) {
				recs = append(recs, extra[i])
				for _, later := range genuine[i+1:] {
					early = early || bytes.Equal(extra[i], later)
				}
			}
			recs = append(recs, g)
		}
		q := &queue{recs: recs}
		rd := NewReader(r, a.id, q.recv)
		pos, lost := 0, uint64(0)
		p := make([]byte, 7)
		for {
			n, err := rd.Read(p)
			if pos+n > len(data) || !bytes.Equal(p[:n], data[pos:pos+n]) {
				t.Fatalf("octets %d..%d are not the stream's: %q", pos, pos+n, p[:n])
			}
			pos += n
			var g *GapError
			if err == nil {
				continue
			}
			if errors.As(err, &g) {
				pos += int(g.Bytes)
				lost += g.Bytes
				continue
			}
			if err == io.EOF && pos == len(data) && (lost == 0 || early) {
				return
			}
			if err == io.ErrUnexpectedEOF && early && pos <= len(data) {
				return // the end was lost too
			}
			t.Fatalf("after %d of %d octets (%d lost, a genuine record early: %v): %v", pos, len(data), lost, early, err)
		}
	})
}
