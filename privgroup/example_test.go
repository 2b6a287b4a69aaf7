package privgroup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/privgroup"
)

// Alice sends to the group; Bob, a trusted member, gets her sender key by
// whisper and reads her shouts once a batch record authenticates them.
func Example() {
	alicePub, aliceSec, _ := curve.GenerateKeyPair(nil)
	bobPub, bobSec, _ := curve.GenerateKeyPair(nil)
	aliceID := uuid.NewSHA1(uuid.NameSpaceOID, alicePub.Bytes())

	alice, err := privgroup.NewSender("video", aliceID, &aliceSec, privgroup.Options{})
	if err != nil {
		log.Fatal(err)
	}
	bob, err := privgroup.NewReceiver("video", &bobSec, privgroup.Options{})
	if err != nil {
		log.Fatal(err)
	}

	// Alice → Bob by WHISPER over their CURVE connection.
	key, err := alice.KeyFor(bobPub)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := bob.AddSenderKey(key, alicePub); err != nil {
		log.Fatal(err)
	}

	// Alice → group by SHOUT: a data message, then the batch record.
	msg, _ := alice.Seal(nil, []byte("frame 1"))
	rec, _ := alice.Batch(nil)

	text, info, err := bob.Open(nil, msg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q counter %d: %v\n", text, info.Counter, info.Status)
	_, info, err = bob.Open(nil, rec)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range info.Settlements() {
		fmt.Printf("counters %d..%d authenticated: %v\n", s.First, s.First+s.Count-1, s.Authenticated)
	}
	fmt.Println("overhead per message:", len(msg)-len("frame 1"), "octets")
	// Output:
	// "frame 1" counter 0: pending
	// counters 0..0 authenticated: true
	// overhead per message: 29 octets
}

// A stream through a Writer and a per-sender Reader; the send and receive
// funcs stand for the node's SHOUT and its group events.
func ExampleNewWriter() {
	alicePub, aliceSec, _ := curve.GenerateKeyPair(nil)
	bobPub, bobSec, _ := curve.GenerateKeyPair(nil)
	aliceID := uuid.NewSHA1(uuid.NameSpaceOID, alicePub.Bytes())
	alice, _ := privgroup.NewSender("video", aliceID, &aliceSec, privgroup.Options{})
	bob, _ := privgroup.NewReceiver("video", &bobSec, privgroup.Options{})
	key, _ := alice.KeyFor(bobPub)
	if _, err := bob.AddSenderKey(key, alicePub); err != nil {
		log.Fatal(err)
	}

	var wire [][]byte
	send := func(b []byte) error { wire = append(wire, bytes.Clone(b)); return nil }
	recv := func() ([]byte, error) {
		if len(wire) == 0 {
			return nil, io.EOF
		}
		b := wire[0]
		wire = wire[1:]
		return b, nil
	}

	w, err := privgroup.NewWriter(alice, send, privgroup.WriterOptions{ChunkSize: 1024})
	if err != nil {
		log.Fatal(err)
	}
	io.WriteString(w, "the video stream from the hotel room to the phone in the bar")
	w.Close()

	got, err := io.ReadAll(privgroup.NewReader(bob, aliceID, recv))
	fmt.Printf("%s (%v)\n", got, err)
	// Output:
	// the video stream from the hotel room to the phone in the bar (<nil>)
}

// A Queue between the goroutine that receives a sender's records (here
// the Writer's send) and the goroutine of its Reader.
func ExampleQueue() {
	alicePub, aliceSec, _ := curve.GenerateKeyPair(nil)
	bobPub, bobSec, _ := curve.GenerateKeyPair(nil)
	aliceID := uuid.NewSHA1(uuid.NameSpaceOID, alicePub.Bytes())
	alice, _ := privgroup.NewSender("video", aliceID, &aliceSec, privgroup.Options{})
	bob, _ := privgroup.NewReceiver("video", &bobSec, privgroup.Options{})
	key, _ := alice.KeyFor(bobPub)
	if _, err := bob.AddSenderKey(key, alicePub); err != nil {
		log.Fatal(err)
	}

	q := privgroup.NewQueue(1024, 1<<20, nil)
	go func() {
		// Keep: each record in a slice of its own, which the queue holds.
		w, _ := privgroup.NewWriter(alice, func(rec []byte) error {
			if !q.Push(rec, nil) {
				return errors.New("queue full")
			}
			return nil
		}, privgroup.WriterOptions{ChunkSize: 16, Keep: true})
		io.WriteString(w, "the video stream from the hotel room to the phone in the bar")
		w.Close()
		q.Close()
	}()

	ctx := context.Background()
	got, err := io.ReadAll(privgroup.NewReader(bob, aliceID, func() ([]byte, error) { return q.Recv(ctx) }))
	fmt.Printf("%s (%v)\n", got, err)
	// Output:
	// the video stream from the hotel room to the phone in the bar (<nil>)
}

// A sender changes suite at a rotation, for instance when a member says it
// opens AES-GCM/BLAKE3 slowly (zyregroup does this on its own): the new
// sender key names the new suite, and the receiver opens both.
func ExampleSender_SetSuite() {
	alicePub, aliceSec, _ := curve.GenerateKeyPair(nil)
	bobPub, bobSec, _ := curve.GenerateKeyPair(nil)
	aliceID := uuid.NewSHA1(uuid.NameSpaceOID, alicePub.Bytes())
	alice, _ := privgroup.NewSender("video", aliceID, &aliceSec, privgroup.Options{Suite: privgroup.SuiteAESGCMBLAKE3})
	bob, _ := privgroup.NewReceiver("video", &bobSec, privgroup.Options{})
	give := func() {
		key, _ := alice.KeyFor(bobPub)
		ki, err := bob.AddSenderKey(key, alicePub)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("bob holds a key of suite", ki.Suite)
	}
	give()
	if err := alice.SetSuite(privgroup.SuiteChaCha20SHA256); err != nil {
		log.Fatal(err)
	}
	// Rotate returns the old epoch's last batch record (none here), which
	// goes to the group before anything of the new epoch.
	if _, err := alice.Rotate(nil); err != nil {
		log.Fatal(err)
	}
	give()
	msg, _ := alice.Seal(nil, []byte("frame 2"))
	text, _, err := bob.Open(nil, msg)
	fmt.Printf("%q %v\n", text, err)
	// Output:
	// bob holds a key of suite aes256gcm-blake3
	// bob holds a key of suite chacha20poly1305-sha256
	// "frame 2" <nil>
}
