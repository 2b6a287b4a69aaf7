package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zyre-go/zyre/agent/client"
)

// fakeAgent serves the control protocol on a socket of its own and answers
// each op with answers[op] (the result's JSON): an agent whose answers are
// malformed.
func fakeAgent(t *testing.T, answers map[string]any) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					var req client.Request
					if json.Unmarshal(sc.Bytes(), &req) != nil {
						return
					}
					resp := client.Response{ID: req.ID, OK: true}
					if a, ok := answers[req.Op]; ok {
						resp.Result, _ = json.Marshal(a)
					} else {
						resp.OK, resp.Error = false, "unknown op"
					}
					b, _ := json.Marshal(resp)
					if _, err := c.Write(append(b, '\n')); err != nil {
						return
					}
				}
			}()
		}
	}()
	return sock
}

// An agent's answer with UUIDs shorter than the CLI's 8-character short
// form (and a control character in one) is printed, not a crash.
func TestTrustListAgentShortUUID(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	home := t.TempDir()
	kc := &client.KeyChange{UUID: "x", Key: "k", Fingerprint: "f2"}
	sock := fakeAgent(t, map[string]any{
		"info": client.Info{Protocol: 1, Name: "fake", UUID: "ab", Secure: true, Home: home},
		"trust.list": []client.TrustRecord{
			{Name: "mallory", UUID: "ab", Fingerprint: "f1", State: "tofu", KeyChange: kc},
			{Name: "eve", UUID: "\x1b[2J", Fingerprint: "f3", State: "tofu", KeyChange: kc},
			{Name: "nobody", UUID: "", Fingerprint: "f4", State: "tofu", KeyChange: kc},
		},
	})
	code, out, errs := runCmdOut(ctx, "trust", "list", "--home", home, "--socket", sock)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, want := range []string{"KEY CHANGED for mallory (uuid ab)", "KEY CHANGED for eve", "KEY CHANGED for nobody"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("the agent's control character reached the terminal:\n%q", out)
	}
}
