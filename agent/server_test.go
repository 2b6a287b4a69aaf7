package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/internal/testenv"
	"github.com/zyre-go/zyre/zre"
)

// The test binary run as another user (TestOtherUserRefused) dials the
// socket in $AGENT_TEST_DIAL and prints the agent's first line.
func TestMain(m *testing.M) {
	if sock := os.Getenv("AGENT_TEST_DIAL"); sock != "" {
		c, err := net.Dial("unix", sock)
		if err != nil {
			os.Stdout.WriteString("dial: " + err.Error() + "\n")
			os.Exit(3)
		}
		req := os.Getenv("AGENT_TEST_REQUEST") // TestOtherUserRefusedTrustAndPair
		if req == "" {
			req = `{"id":1,"op":"members"}`
		}
		c.Write([]byte(req + "\n"))
		line, _ := bufio.NewReader(c).ReadString('\n')
		os.Stdout.WriteString(line)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const testTimeout = 30 * time.Second

func startNode(t testing.TB, port int, name string, groups ...string) *zre.Node {
	t.Helper()
	n, err := zre.New(zre.Config{Name: name, Beacon: zre.BeaconConfig{Port: port, Loopback: true, Interval: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	for _, g := range groups {
		if err := n.Join(g); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return n
}

// startServer runs a Server for a node on loopback; it stops with the
// test. It returns the server and the channel Serve's result comes on.
func startServer(t testing.TB, n *zre.Node, sock string) (*Server, context.CancelFunc, chan error) {
	t.Helper()
	srv, err := Listen(Config{Node: n, Socket: sock, Version: "test"})
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
	return srv, cancel, done
}

func dial(t *testing.T, sock string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := client.Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitMember polls the agent until a member named name is listed.
func waitMember(t *testing.T, c *client.Client, name string) client.Member {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		ms, err := c.Members(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Name == name {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no member %q after %v: %+v", name, testTimeout, ms)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestServer(t *testing.T) {
	port := 20000 + rand.IntN(40000)
	n := startNode(t, port, "agent-node", "lab")
	peer := startNode(t, port, "peer", "lab", "ops")
	sock := filepath.Join(t.TempDir(), "run", "zyre", client.SocketName)
	startServer(t, n, sock)

	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %04o, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(filepath.Dir(sock)); di.Mode().Perm() != 0o700 {
		t.Errorf("socket directory mode %04o, want 0700", di.Mode().Perm())
	}

	c := dial(t, sock)
	ctx := context.Background()
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "agent-node" || info.UUID != n.UUID().String() || info.PID != os.Getpid() || info.Protocol != client.ProtocolVersion {
		t.Errorf("info %+v", info)
	}
	m := waitMember(t, c, "peer")
	if m.UUID != peer.UUID().String() || m.ID != m.UUID[:8] || m.Address != peer.Endpoint() || m.Presence != client.Alive || m.Trust != "-" {
		t.Errorf("member %+v", m)
	}

	// Events through a second connection: a shout of the peer arrives,
	// and one of ours reaches the peer.
	ev := dial(t, sock)
	if err := ev.Subscribe(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ev.Call(ctx, client.Request{Op: "members"}, nil); err == nil {
		t.Error("a request on a subscribed connection was taken")
	}
	if err := peer.Shout("lab", []byte("hello agent")); err != nil {
		t.Fatal(err)
	}
	ectx, cancel := context.WithTimeout(ctx, testTimeout)
	defer cancel()
	for {
		e, err := ev.Next(ectx)
		if err != nil {
			t.Fatal(err)
		}
		if e.Type == "SHOUT" && e.Group == "lab" && len(e.Content) == 1 && string(e.Content[0]) == "hello agent" && e.Name == "peer" {
			break
		}
	}
	if err := c.Shout(ctx, "lab", []byte("hello peer")); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case e := <-peer.Events():
			if s, ok := e.(*zre.Shout); ok && string(s.Content[0]) == "hello peer" {
				goto whisper
			}
		case <-ectx.Done():
			t.Fatal("the agent's shout did not arrive")
		}
	}
whisper:
	if err := c.Whisper(ctx, peer.UUID().String(), []byte("psst")); err != nil {
		t.Fatal(err)
	}
	if err := c.Join(ctx, "new"); err != nil {
		t.Fatal(err)
	}
	if info, _ := c.Info(ctx); strings.Join(info.Groups, ",") != "lab,new" {
		t.Errorf("groups %v", info.Groups)
	}
	// Errors are answers, not a broken connection.
	for _, req := range []client.Request{{Op: "frob"}, {Op: "whisper", Peer: "not-a-uuid", Content: [][]byte{[]byte("x")}}, {Op: "shout", Group: "lab"}, {Op: "trust.list"}} {
		if err := c.Call(ctx, req, nil); err == nil {
			t.Errorf("%+v: no error", req)
		}
	}
	if _, err := c.Info(ctx); err != nil {
		t.Fatalf("after refused requests: %v", err)
	}
}

// TestHostileLines: a bad line gets an error and the connection closes; a
// line beyond MaxLine is refused without being kept whole.
func TestHostileLines(t *testing.T) {
	n := startNode(t, 20000+rand.IntN(40000), "agent-node")
	sock := filepath.Join(t.TempDir(), client.SocketName)
	startServer(t, n, sock)
	for _, in := range []string{"{not json\n", strings.Repeat("x", client.MaxLine+10) + "\n"} {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		go func() { io.WriteString(c, in) }()
		c.SetReadDeadline(time.Now().Add(testTimeout))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		var resp client.Response
		if err != nil || json.Unmarshal([]byte(line), &resp) != nil || resp.OK || resp.Error == "" {
			t.Errorf("%.20q: response %q, %v", in, line, err)
		}
	}
}

// TestRestart: a second agent at the same socket is refused while the
// first runs; after the first stops (and after it was killed, leaving its
// socket file behind) a new one serves the socket.
func TestRestart(t *testing.T) {
	port := 20000 + rand.IntN(40000)
	sock := filepath.Join(t.TempDir(), client.SocketName)
	n1 := startNode(t, port, "first")
	_, cancel, done := startServer(t, n1, sock)
	if _, err := Listen(Config{Node: n1, Socket: sock}); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Listen: %v, want ErrRunning", err)
	}
	cancel()
	<-done
	done <- nil // for the Cleanup
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind after a clean stop: %v", err)
	}
	// A stale socket file, as a killed agent leaves it.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Stat(sock); err != nil {
		t.Fatal(err)
	}
	n2 := startNode(t, port, "second")
	startServer(t, n2, sock)
	if info, err := dial(t, sock).Info(context.Background()); err != nil || info.Name != "second" {
		t.Fatalf("after restart: %+v, %v", info, err)
	}
}

// TestSocketDirChecked: a socket directory others may write to is refused.
func TestSocketDirChecked(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, 20000+rand.IntN(40000), "x")
	if _, err := Listen(Config{Node: n, Socket: filepath.Join(dir, "agent.sock")}); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Fatalf("Listen in a 0777 directory: %v", err)
	}
}

// TestOtherUserRefused: a process of another uid that reaches the socket
// (its mode opened up for the test) is refused by its peer credentials.
// Needs root, to run the child as uid 65534.
func TestOtherUserRefused(t *testing.T) {
	// A copy of the test binary the other user may run.
	dir, exe := testenv.OtherUserExe(t, "agent", 0o755)
	sockDir := filepath.Join(dir, "run")
	if err := os.Mkdir(sockDir, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(sockDir, client.SocketName)
	n := startNode(t, 20000+rand.IntN(40000), "agent-node")
	startServer(t, n, sock)

	runAs := func() string {
		cmd := exec.Command(exe)
		cmd.Env = []string{"AGENT_TEST_DIAL=" + sock}
		testenv.AsOtherUser(cmd)
		out, _ := cmd.Output()
		return string(out)
	}
	// With the modes as Listen made them, the other user cannot even
	// reach the socket.
	if out := runAs(); !strings.Contains(out, "permission denied") {
		t.Errorf("uid 65534 through mode 0700/0600: %q, want permission denied", out)
	}
	// Opened up: the peer credentials refuse it.
	if err := os.Chmod(sockDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	out := runAs()
	var resp client.Response
	if err := json.Unmarshal([]byte(out), &resp); err != nil || resp.OK || !strings.Contains(resp.Error, "uid 65534 is not the agent's user") {
		t.Fatalf("uid 65534 through an open socket: %q", out)
	}
	// Our own uid still gets answers.
	if _, err := dial(t, sock).Info(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestAcceptErrorNotFatal: running out of file descriptors (a client that
// opens connections without end) makes accept fail for a while; the agent
// serves again once they are closed, rather than stopping.
func TestAcceptErrorNotFatal(t *testing.T) {
	n := startNode(t, 20000+rand.IntN(40000), "agent-node")
	sock := filepath.Join(t.TempDir(), client.SocketName)
	_, _, done := startServer(t, n, sock)
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	// Our own descriptors, and 64 more.
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	lim := old
	lim.Cur = uint64(len(ents) + 64)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	func() {
		defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
		for range 1000 {
			c, err := net.Dial("unix", sock)
			if err != nil {
				break
			}
			conns = append(conns, c)
		}
		// The agent meets EMFILE accepting the last ones; give it time
		// to (wrongly) stop on it.
		deadline := time.Now().Add(time.Second)
		for time.Now().Before(deadline) {
			select {
			case err := <-done:
				t.Fatalf("Serve returned while out of descriptors: %v", err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	if len(conns) >= 1000 {
		t.Fatalf("%d connections under a limit of %d descriptors", len(conns), lim.Cur)
	}
	for _, c := range conns {
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := client.Dial(ctx, sock)
	if err != nil {
		t.Fatalf("after the connections closed: %v", err)
	}
	defer c.Close()
	if _, err := c.Info(ctx); err != nil {
		t.Fatalf("after the connections closed: %v", err)
	}
}

// TestSocketPathNotASocket: a file that is not a socket at the socket's
// path (a mistyped --socket naming a file of the user's, an empty
// directory) is refused, not removed as a stale socket.
func TestSocketPathNotASocket(t *testing.T) {
	n := startNode(t, 20000+rand.IntN(40000), "x")
	dir := t.TempDir()
	file := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(file, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{file, empty} {
		srv, err := Listen(Config{Node: n, Socket: p})
		if err == nil {
			srv.ln.Close()
			t.Errorf("Listen at %s: no error", p)
		}
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s after Listen: %v", p, err)
		}
	}
}

// TestSocketDirOfAnotherUser: a socket directory another user made first
// (/tmp/zyre-UID, say) is refused, and nothing is made in it.
func TestSocketDirOfAnotherUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to chown")
	}
	dir := filepath.Join(t.TempDir(), "zyre-run")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, 20000+rand.IntN(40000), "x")
	sock := filepath.Join(dir, client.SocketName)
	if _, err := Listen(Config{Node: n, Socket: sock}); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Fatalf("Listen in uid 65534's directory: %v", err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket made: %v", err)
	}
}
