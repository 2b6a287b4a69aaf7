package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/internal/testenv"
)

// The test binary run as another user (TestForeignAgentRefused) listens
// at $CLIENT_TEST_LISTEN, says "listening" and answers every line with an
// agent's answer until its stdin closes.
func TestMain(m *testing.M) {
	if sock := os.Getenv("CLIENT_TEST_LISTEN"); sock != "" {
		ln, err := net.Listen("unix", sock)
		if err != nil {
			os.Stdout.WriteString("listen: " + err.Error() + "\n")
			os.Exit(3)
		}
		os.Chmod(sock, 0o666)
		os.Stdout.WriteString("listening\n")
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					buf := make([]byte, 4096)
					for {
						if _, err := c.Read(buf); err != nil {
							return
						}
						c.Write([]byte(`{"id":1,"ok":true,"result":{"protocol":1,"name":"impostor"}}` + "\n"))
					}
				}()
			}
		}()
		os.Stdin.Read(make([]byte, 1))
		ln.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestForeignAgentRefused: a socket at the agent's path served by a
// process of another uid (another user made /tmp/zyre-UID first, say) is
// refused before anything is sent to it. Needs root, to run the child as
// uid 65534.
func TestForeignAgentRefused(t *testing.T) {
	dir, exe := testenv.OtherUserExe(t, "client", 0o777)
	sock := filepath.Join(dir, SocketName)
	cmd := exec.Command(exe)
	cmd.Env = []string{"CLIENT_TEST_LISTEN=" + sock}
	testenv.AsOtherUser(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	line := make([]byte, 64)
	k, _ := out.Read(line)
	if !strings.HasPrefix(string(line[:k]), "listening") {
		t.Fatalf("child: %q", line[:k])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, sock)
	if err == nil {
		info, ierr := c.Info(ctx)
		c.Close()
		t.Fatalf("Dial of uid 65534's socket succeeded; Info: %+v, %v", info, ierr)
	}
	if !errors.Is(err, ErrForeignAgent) || !strings.Contains(err.Error(), "uid 65534") {
		t.Fatalf("Dial of uid 65534's socket: %v", err)
	}
}

// FuzzReadFrame: any input gives a frame within bounds or an error,
// never a panic, and a frame written reads back the same.
func FuzzReadFrame(f *testing.F) {
	var b bytes.Buffer
	WriteFrame(&b, FrameData, []byte("some octets"))
	f.Add(b.Bytes())
	b.Reset()
	WriteMsg(&b, StreamMsg{Kind: StreamResult, Acked: 1})
	f.Add(b.Bytes())
	f.Add([]byte{'e', 0, 0, 0, 0})
	f.Add([]byte{'d', 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{'x', 0, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		kind, p, err := ReadFrame(bufio.NewReader(bytes.NewReader(in)), nil)
		if err != nil {
			return
		}
		if len(p) > MaxFrame || len(p) > len(in) {
			t.Fatalf("a frame of %d octets from %d", len(p), len(in))
		}
		var out bytes.Buffer
		if err := WriteFrame(&out, kind, p); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), in[:out.Len()]) {
			t.Fatal("the frame does not write back the same")
		}
	})
}

type countingWriter struct{ writes, octets int }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	w.octets += len(p)
	return len(p), nil
}

// An empty frame (the end) is one write: a second, empty one would fail
// on a socket the agent closes as soon as it has read the end.
func TestWriteFrameEmptyIsOneWrite(t *testing.T) {
	var w countingWriter
	if err := WriteFrame(&w, FrameEnd, nil); err != nil {
		t.Fatal(err)
	}
	if w.writes != 1 || w.octets != 5 {
		t.Fatalf("%d writes of %d octets, want 1 of 5", w.writes, w.octets)
	}
}
