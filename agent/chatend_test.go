package agent

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

// TestChatEndText: a member's chat stream cut before its end is said in
// words, not "unexpected EOF" (usertry3 #11); other ends keep their text.
func TestChatEndText(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{io.ErrUnexpectedEOF, "left the chat without ending it (its node stopped, or the network dropped it)"},
		{fmt.Errorf("zyregroup: reading: %w", io.ErrUnexpectedEOF), "left the chat without ending it (its node stopped, or the network dropped it)"},
		{errors.New("no longer gives this device its key"), "no longer gives this device its key"},
	} {
		if got := ChatEndText(tc.err); got != tc.want {
			t.Errorf("ChatEndText(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
