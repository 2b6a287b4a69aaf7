package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/autoaccept"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zre"
)

// secureAgent is a secure node on loopback with a trust store in home,
// served at its own socket.
type secureAgent struct {
	n    *zre.Node
	sec  curve.SecretKey
	st   *trust.Store
	home string
	sock string
}

func newSecureAgent(t *testing.T, port int, name string, opts ...func(*Config)) *secureAgent {
	t.Helper()
	_, sec, err := curve.GenerateKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n, err := zre.New(zre.Config{Name: name, Beacon: zre.BeaconConfig{Port: port, Loopback: true, Interval: 100 * time.Millisecond},
		Secure: &zre.SecureConfig{Secret: sec}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	st, err := trust.Open(home, trust.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := &secureAgent{n: n, sec: sec, st: st, home: home, sock: filepath.Join(t.TempDir(), "run", client.SocketName)}
	cfg := Config{Node: n, Trust: st, Secret: sec, Home: home, Socket: a.sock, Version: "test"}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(testTimeout):
			t.Error("Serve did not return")
		}
	})
	return a
}

// verify marks b verified in a's trust store.
func (a *secureAgent) verify(t *testing.T, b *secureAgent) {
	t.Helper()
	if _, err := a.st.MarkVerified(context.Background(), b.n.PublicKey(), b.n.UUID(), b.n.Name(), "test", nil); err != nil {
		t.Fatal(err)
	}
}

// twoAgents starts laptop and tablet, trusting each other, and waits
// until each sees the other.
func twoAgents(t *testing.T, tabletOpts ...func(*Config)) (a, b *secureAgent) {
	port := 20000 + mrand.IntN(40000)
	a, b = newSecureAgent(t, port, "laptop"), newSecureAgent(t, port, "tablet", tabletOpts...)
	a.verify(t, b)
	b.verify(t, a)
	waitMember(t, dial(t, a.sock), "tablet")
	waitMember(t, dial(t, b.sock), "laptop")
	return a, b
}

func waitReceiving(t *testing.T, sock string, want bool) {
	t.Helper()
	c := dial(t, sock)
	deadline := time.Now().Add(testTimeout)
	for {
		tr, err := c.Transfers(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if tr.Receiving == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiving is not %v after %v", want, testTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type receiveOut struct {
	res    client.TransferResult
	err    error
	events []client.TransferEvent
}

// receive runs a Receive in a goroutine; answer answers offers.
func receive(t *testing.T, sock string, req client.ReceiveRequest, answer bool) chan receiveOut {
	c := dial(t, sock)
	out := make(chan receiveOut, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		var o receiveOut
		o.res, o.err = c.Receive(ctx, req, func(e client.TransferEvent) bool {
			o.events = append(o.events, e)
			return answer
		})
		out <- o
	}()
	return out
}

func kinds(es []client.TransferEvent) string {
	var ks []string
	for _, e := range es {
		if e.Kind != client.XferProgress {
			ks = append(ks, e.Kind)
		}
	}
	return strings.Join(ks, ",")
}

func TestTransferThroughAgent(t *testing.T) {
	a, b := twoAgents(t)
	src := t.TempDir()
	data := make([]byte, 3<<20+17)
	rand.Read(data)
	os.MkdirAll(filepath.Join(src, "photos", "2026"), 0o755)
	os.WriteFile(filepath.Join(src, "photos", "2026", "beach.jpg"), data, 0o644)
	os.WriteFile(filepath.Join(src, "notes.txt"), []byte("hello cousin"), 0o600)
	dst := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	recv := receive(t, b.sock, client.ReceiveRequest{Dir: dst, Ask: true}, true)
	waitReceiving(t, b.sock, true)
	// One receive at a time.
	if _, err := dial(t, b.sock).Receive(ctx, client.ReceiveRequest{Dir: dst, Yes: true}, func(client.TransferEvent) bool { return false }); err == nil ||
		!strings.Contains(err.Error(), "a receive runs already") {
		t.Fatalf("a second receive: %v", err)
	}
	var events []client.TransferEvent
	res, err := dial(t, a.sock).Send(ctx, client.SendRequest{Peer: "tablet", Paths: []string{filepath.Join(src, "photos"), filepath.Join(src, "notes.txt")}},
		func(e client.TransferEvent) { events = append(events, e) })
	if err != nil {
		t.Fatalf("Send: %v (events %s)", err, kinds(events))
	}
	if res.Files != 2 || res.Octets != int64(len(data))+12 || res.Name != "tablet" || res.Peer != b.n.UUID().String() {
		t.Errorf("send result %+v", res)
	}
	if got := kinds(events); got != "waiting,offering" {
		t.Errorf("send events %q", got)
	}
	last := events[len(events)-1]
	if last.Kind != client.XferProgress || last.Held != last.Total || last.Total != res.Octets {
		t.Errorf("the last progress %+v, want all of %d", last, res.Octets)
	}
	o := <-recv
	if o.err != nil {
		t.Fatalf("Receive: %v", o.err)
	}
	if got := kinds(o.events); got != "offer,accepted" {
		t.Errorf("receive events %q", got)
	}
	if o.events[0].Count != 2 || o.events[0].Name != "laptop" || o.events[1].Text != "answer" {
		t.Errorf("offer event %+v, accepted %+v", o.events[0], o.events[1])
	}
	if o.res.Name != "laptop" || len(o.res.Paths) != 2 || len(o.res.Offer) != 2 || o.res.Offer[0].SHA256 == "" {
		t.Errorf("receive result %+v", o.res)
	}
	got, err := os.ReadFile(filepath.Join(dst, "photos", "2026", "beach.jpg"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the file received: %d octets, %v", len(got), err)
	}
	waitReceiving(t, b.sock, false)
}

func TestTransferAutoAcceptAndDecline(t *testing.T) {
	a, b := twoAgents(t)
	src := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(src, []byte("hello"), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	// Asked, and declined: both sides end with it.
	recv := receive(t, b.sock, client.ReceiveRequest{Dir: t.TempDir(), Ask: true}, false)
	waitReceiving(t, b.sock, true)
	_, err := dial(t, a.sock).Send(ctx, client.SendRequest{Peer: "tablet", Paths: []string{src}}, func(client.TransferEvent) {})
	if err == nil || !strings.Contains(err.Error(), "rejected") {
		t.Fatalf("Send to a receiver that declines: %v", err)
	}
	if o := <-recv; o.err == nil || kinds(o.events) != "offer,declined" {
		t.Fatalf("declined: %v, events %s", o.err, kinds(o.events))
	}

	// In the auto-accept list (laptop's UUID and key): no question.
	if _, err := autoaccept.Open(b.home).Add(ctx, autoaccept.Entry{UUID: a.n.UUID(), Name: "laptop", Key: a.n.PublicKey().Z85()}); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	recv = receive(t, b.sock, client.ReceiveRequest{Dir: dst}, false)
	waitReceiving(t, b.sock, true)
	if _, err := dial(t, a.sock).Send(ctx, client.SendRequest{Peer: "tablet", Paths: []string{src}}, func(client.TransferEvent) {}); err != nil {
		t.Fatal(err)
	}
	o := <-recv
	if o.err != nil || kinds(o.events) != "accepted" || o.events[0].Text != "auto-accept" {
		t.Fatalf("auto-accept: %v, events %+v", o.err, o.events)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "notes.txt")); string(b) != "hello" {
		t.Fatalf("received %q", b)
	}
}

func TestTransferErrors(t *testing.T) {
	a, b := twoAgents(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, []byte("x"), 0o600)
	for _, c := range []struct {
		name string
		req  client.SendRequest
		want string
	}{
		{"relative path", client.SendRequest{Peer: "tablet", Paths: []string{"f"}}, "not an absolute path"},
		{"no paths", client.SendRequest{Peer: "tablet"}, "no paths"},
		{"missing file", client.SendRequest{Peer: "tablet", Paths: []string{file + ".nope"}}, "no such file"},
		{"unknown peer", client.SendRequest{Peer: "nobody", Paths: []string{file}}, `peer "nobody"`},
		{"bad trust", client.SendRequest{Peer: "tablet", Paths: []string{file}, Trust: "any"}, `trust "any"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := dial(t, a.sock).Send(ctx, c.req, func(client.TransferEvent) {})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Send: %v, want %q", err, c.want)
			}
		})
	}
	if _, err := dial(t, b.sock).Receive(ctx, client.ReceiveRequest{Dir: "in"}, func(client.TransferEvent) bool { return false }); err == nil ||
		!strings.Contains(err.Error(), "not an absolute path") {
		t.Fatalf("Receive into a relative folder: %v", err)
	}

	// A receive ends with its client.
	rc := dial(t, b.sock)
	rctx, rcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rc.Receive(rctx, client.ReceiveRequest{Dir: t.TempDir(), Yes: true}, func(client.TransferEvent) bool { return false })
	}()
	waitReceiving(t, b.sock, true)
	rcancel()
	wg.Wait()
	waitReceiving(t, b.sock, false)

	// A plain agent refuses.
	port := 20000 + mrand.IntN(40000)
	n := startNode(t, port, "plain")
	sock := filepath.Join(t.TempDir(), "run", client.SocketName)
	startServer(t, n, sock)
	if _, err := dial(t, sock).Send(ctx, client.SendRequest{Peer: "x", Paths: []string{file}}, func(client.TransferEvent) {}); err == nil ||
		!strings.Contains(err.Error(), "plain mode") {
		t.Fatalf("Send through a plain agent: %v", err)
	}
}

func TestStreamThroughAgent(t *testing.T) {
	a, b := twoAgents(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	data := make([]byte, 1<<20+3)
	rand.Read(data)

	type recvOut struct {
		res  client.StreamMsg
		err  error
		msgs []client.StreamMsg
		buf  bytes.Buffer
	}
	out := make(chan *recvOut, 1)
	go func() {
		o := &recvOut{}
		o.res, o.err = dial(t, b.sock).StreamRecv(ctx, client.StreamRequest{Group: "kids"}, &o.buf, func(m client.StreamMsg) { o.msgs = append(o.msgs, m) })
		out <- o
	}()
	ss, m, err := dial(t, a.sock).StreamSend(ctx, client.StreamRequest{Group: "kids", Members: 1})
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != client.StreamStreaming || m.Members != 1 || m.Suite == "" {
		t.Fatalf("the first message %+v", m)
	}
	// One stream per group and agent.
	if _, _, err := dial(t, a.sock).StreamSend(ctx, client.StreamRequest{Group: "kids", Members: 0}); err == nil ||
		!strings.Contains(err.Error(), "runs already") {
		t.Fatalf("a second stream in the group: %v", err)
	}
	for p := data; len(p) > 0; {
		k := min(len(p), 50000)
		if _, err := ss.Write(p[:k]); err != nil {
			t.Fatal(err)
		}
		p = p[k:]
	}
	res, err := ss.Close()
	if err != nil || res.Kind != client.StreamResult || res.Acked != 1 || res.SentTo != 1 {
		t.Fatalf("send result %+v, %v", res, err)
	}
	o := <-out
	if o.err != nil || !o.res.Ended || o.res.Late != 0 || o.res.Lost != 0 {
		t.Fatalf("recv result %+v, %v", o.res, o.err)
	}
	if len(o.msgs) != 1 || o.msgs[0].Kind != client.StreamReading || o.msgs[0].Name != "laptop" {
		t.Fatalf("recv messages %+v", o.msgs)
	}
	if !bytes.Equal(o.buf.Bytes(), data) {
		t.Fatalf("received %d octets, not the %d sent", o.buf.Len(), len(data))
	}

	for _, c := range []struct {
		name string
		req  client.StreamRequest
		want string
	}{
		{"no group", client.StreamRequest{}, "group name of 0 octets"},
		{"bad trust", client.StreamRequest{Group: "g", Trust: "all"}, `trust "all"`},
		{"bad suite", client.StreamRequest{Group: "g", Suite: "rot13"}, "rot13"},
		{"bad chunk", client.StreamRequest{Group: "g", Chunk: 2 << 20}, "chunk"},
		{"nobody", client.StreamRequest{Group: "g", Members: 1, WaitMS: 200}, `nobody has joined "g" within 200ms`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := dial(t, a.sock).StreamSend(ctx, c.req)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("StreamSend: %v, want %q", err, c.want)
			}
		})
	}
}

func TestPrivateChatThroughAgent(t *testing.T) {
	a, b := twoAgents(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ca, fa, err := dial(t, a.sock).ChatPrivate(ctx, "lab")
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cb, fb, err := dial(t, b.sock).ChatPrivate(ctx, "lab")
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	// next reads c's messages until one of kind (others: members, sent).
	next := func(c *client.PrivateChat, kind string) client.StreamMsg {
		t.Helper()
		for {
			m, err := c.Next()
			if err != nil {
				t.Fatalf("waiting for %s: %v", kind, err)
			}
			if m.Kind == kind {
				return m
			}
		}
	}
	// Each waits until the other holds its key.
	if fa.Kind != client.ChatChatting || fb.Kind != client.ChatChatting {
		t.Fatalf("first messages %+v, %+v", fa, fb)
	}
	if fa.Members == 0 {
		if m := next(ca, client.ChatMembers); m.Members != 1 {
			t.Fatalf("laptop's members %+v", m)
		}
	}
	if fb.Members == 0 {
		if m := next(cb, client.ChatMembers); m.Members != 1 {
			t.Fatalf("tablet's members %+v", m)
		}
	}
	if err := ca.Send("hello tablet"); err != nil {
		t.Fatal(err)
	}
	if m := next(ca, client.ChatSent); m.Text != "hello tablet" {
		t.Fatalf("sent %+v", m)
	}
	if m := next(cb, client.ChatLine); m.Text != "hello tablet" || m.Name != "laptop" || m.Peer != a.n.UUID().String() {
		t.Fatalf("tablet got %+v", m)
	}
	if err := cb.Send("hello laptop"); err != nil {
		t.Fatal(err)
	}
	if m := next(ca, client.ChatLine); m.Text != "hello laptop" || m.Name != "tablet" {
		t.Fatalf("laptop got %+v", m)
	}
	if err := ca.End(); err != nil {
		t.Fatal(err)
	}
	next(ca, client.StreamResult)
	// A stream sent in the same group of the same agent waits its turn
	// (this device's one sender key there holds the chat's lines), and
	// the refusal says what to do.
	if _, _, err := dial(t, b.sock).StreamSend(ctx, client.StreamRequest{Group: "lab"}); err == nil || !strings.Contains(err.Error(), "end the chat (Ctrl-D), stream, then chat again") {
		t.Fatalf("a stream beside the chat: %v", err)
	}
}

func TestBackgroundReceive(t *testing.T) {
	inbox := t.TempDir()
	notes := make(chan string, 16)
	a, b := twoAgents(t, func(c *Config) {
		c.ReceiveDir = inbox
		c.Notify = func(m string) { notes <- m }
	})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	src := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(src, []byte("hello"), 0o600)

	// laptop is not auto-accepted: the background receive leaves its
	// offer alone (no REJECT), and a client's receive takes it.
	sent := make(chan error, 1)
	go func() {
		_, err := dial(t, a.sock).Send(ctx, client.SendRequest{Peer: "tablet", Paths: []string{src}}, func(client.TransferEvent) {})
		sent <- err
	}()
	select {
	case err := <-sent:
		t.Fatalf("the send ended before any receive: %v", err)
	case <-time.After(3 * time.Second): // more than one re-offer (every 2 s)
	}
	dst := t.TempDir()
	o := <-receive(t, b.sock, client.ReceiveRequest{Dir: dst, Yes: true}, false)
	if o.err != nil {
		t.Fatal(o.err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(inbox, "notes.txt")); err == nil {
		t.Fatal("the background receive took an offer of a peer not in the list")
	}

	// In the list: received in the background, with nobody asking.
	if _, err := autoaccept.Open(b.home).Add(ctx, autoaccept.Entry{UUID: a.n.UUID(), Name: "laptop", Key: a.n.PublicKey().Z85()}); err != nil {
		t.Fatal(err)
	}
	if _, err := dial(t, a.sock).Send(ctx, client.SendRequest{Peer: "tablet", Paths: []string{src}}, func(client.TransferEvent) {}); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case m := <-notes:
			if !strings.HasPrefix(m, "received 1 file(s)") {
				continue
			}
			if got, _ := os.ReadFile(filepath.Join(inbox, "notes.txt")); string(got) != "hello" {
				t.Fatalf("the background receive wrote %q", got)
			}
			return
		case <-ctx.Done():
			t.Fatal("nothing received in the background")
		}
	}
}

// A stream's sender that hangs up while the agent waits for members ends
// the stream at once, not after the wait.
func TestStreamSenderGoneWhileWaiting(t *testing.T) {
	a, _ := twoAgents(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c := dial(t, a.sock)
	sctx, scancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.StreamSend(sctx, client.StreamRequest{Group: "nobody-here", Members: 1, WaitMS: testTimeout.Milliseconds()})
		errc <- err
	}()
	// The agent holds the group while it waits.
	ac := dial(t, a.sock)
	for {
		tr, err := ac.Transfers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Streams == 1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	scancel()
	<-errc
	start := time.Now()
	for {
		tr, err := ac.Transfers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Streams == 0 {
			break
		}
		if time.Since(start) > testTimeout/2 {
			t.Fatal("the stream outlived its client")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An agent that hosts a private group answers the probe of a member that
// found it silent, as a one-shot "zyre stream" or "zyre chat" does.
func TestAgentAnswersProbe(t *testing.T) {
	port := 20000 + mrand.IntN(40000)
	a := newSecureAgent(t, port, "laptop")
	_, sec, err := curve.GenerateKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p, err := zre.New(zre.Config{Name: "prober", Beacon: zre.BeaconConfig{Port: port, Loopback: true, Interval: 100 * time.Millisecond},
		Secure: &zre.SecureConfig{Secret: sec}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	chat, _, err := dial(t, a.sock).ChatPrivate(ctx, "lab")
	if err != nil {
		t.Fatal(err)
	}
	defer chat.Close()
	waitMember(t, dial(t, a.sock), "prober")
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	probe := func() { p.Whisper(a.n.UUID(), []byte(StreamAck), []byte(ProbeFrame), []byte("lab")) }
	probe()
	for {
		select {
		case e := <-p.Events():
			if w, ok := e.(*zre.Whisper); ok && len(w.Content) == 3 && string(w.Content[0]) == StreamAck && string(w.Content[1]) == ProbedFrame &&
				string(w.Content[2]) == "lab" {
				return
			}
		case <-tick.C:
			probe() // before the agent's node knew us, it was dropped
		case <-ctx.Done():
			t.Fatal("no answer to the probe")
		}
	}
}
