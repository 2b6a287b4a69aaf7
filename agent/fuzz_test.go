package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/zyre-go/zyre/agent/client"
)

// FuzzRequest: any request line gets one JSON response (an answer or an
// error; for the stream and chat ops, which carry frames after the
// request, one message frame), never a panic or a hang, and the server
// still answers after it.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"op":"info"}`, `{"id":2,"op":"members"}`, `{"id":3,"op":"join","group":"g"}`,
		`{"id":4,"op":"shout","group":"g","content":["aGk="]}`, `{"id":5,"op":"whisper","peer":"x","content":["aGk="]}`,
		`{"id":6,"op":"trust.list"}`, `{"id":7,"op":"leave","group":""}`, `{"op":7}`, `[]`, `null`, `{`, `{"id":8,"op":"stream.recv","group":"g"}`, `{"id":9,"op":"chat.private","group":"g"}`, `{"id":10,"op":"send"}`, `{"id":11,"op":"pair"}`,
	} {
		f.Add(s)
	}
	n := startNode(f, 20000+rand.IntN(40000), "fuzz")
	sock := filepath.Join(f.TempDir(), client.SocketName)
	startServer(f, n, sock)
	ic, err := client.Dial(context.Background(), sock)
	if err != nil {
		f.Fatal(err)
	}
	defer ic.Close()
	f.Fuzz(func(t *testing.T, line string) {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		go c.Write([]byte(line + "\n"))
		rd := bufio.NewReader(c)
		if b, err := rd.Peek(1); err == nil && b[0] == client.FrameMsg {
			kind, p, err := client.ReadFrame(rd, nil)
			if err != nil || kind != client.FrameMsg {
				t.Fatalf("%q: a cut frame: %v", line, err)
			}
			var m client.StreamMsg
			if err := json.Unmarshal(p, &m); err != nil || m.Kind == "" {
				t.Fatalf("%q: message %q: %v", line, p, err)
			}
		} else {
			resp, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("%q: no response: %v", line, err)
			}
			var r client.Response
			if err := json.Unmarshal([]byte(resp), &r); err != nil {
				t.Fatalf("%q: response %q: %v", line, resp, err)
			}
		}
		if _, err := ic.Info(context.Background()); err != nil {
			t.Fatalf("%q: the server no longer answers: %v", line, err)
		}
	})
}
