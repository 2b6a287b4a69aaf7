package agent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/internal/autoaccept"
)

// An offer of an auto-accepted peer that the background receive is still
// looking at when a client's receive starts is left to the client's
// receive (the background leaves it unanswered), not rejected: its sender
// goes on and the client's receive takes it. The auto-accept list is a
// FIFO at first, so the background receive waits in its read of the list
// (in Ignore) while the client's receive starts.
func TestBackgroundLeavesOfferToClientReceive(t *testing.T) {
	inbox := t.TempDir()
	a, b := twoAgents(t, func(c *Config) { c.ReceiveDir = inbox })
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	list := autoaccept.Open(b.home).Path()
	if err := syscall.Mkfifo(list, 0o600); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(src, []byte("hello"), 0o600)
	sent := make(chan error, 1)
	go func() {
		_, err := dial(t, a.sock).Send(ctx, client.SendRequest{Peer: "tablet", Paths: []string{src}}, func(client.TransferEvent) {})
		sent <- err
	}()
	// The open returns once the background receive opened the list to
	// read it: it holds laptop's offer.
	opened := make(chan *os.File, 1)
	go func() {
		f, err := os.OpenFile(list, os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
		}
		opened <- f
	}()
	var w *os.File
	select {
	case w = <-opened:
	case err := <-sent:
		t.Fatalf("the send ended before the background receive read the list: %v", err)
	case <-ctx.Done():
		t.Fatal("the background receive never read the auto-accept list")
	}
	if w == nil {
		t.FailNow()
	}
	// A client's receive starts meanwhile.
	dst := t.TempDir()
	recv := receive(t, b.sock, client.ReceiveRequest{Dir: dst, Yes: true}, false)
	waitReceiving(t, b.sock, true)
	body, err := json.Marshal(map[string]any{"version": 1, "peers": []autoaccept.Entry{{UUID: a.n.UUID(), Name: "laptop", Key: a.n.PublicKey().Z85(),
		Added: time.Now().UTC().Truncate(time.Second)}}})
	if err != nil {
		t.Fatal(err)
	}
	// Later reads find a regular file of the same list.
	if err := os.WriteFile(list+".tmp", body, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(list+".tmp", list); err != nil {
		t.Fatal(err)
	}
	w.Write(body)
	w.Close()
	if err := <-sent; err != nil {
		t.Fatalf("the send: %v", err)
	}
	o := <-recv
	if o.err != nil {
		t.Fatalf("the client's receive: %v", o.err)
	}
	if got, err := os.ReadFile(filepath.Join(dst, "notes.txt")); err != nil || string(got) != "hello" {
		t.Fatalf("the client's folder: %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(inbox, "notes.txt")); err == nil {
		t.Fatal("the background receive took it too")
	}
}
