package seam

import (
	"context"
	"testing"
)

type fakeTransport struct{ name string }

func (fakeTransport) Attach(Node) (Attachment, error) { return nil, context.Canceled }

func TestSetFillsEmbeddedSlot(t *testing.T) {
	type slot = Slot
	type config struct {
		Name string
		slot
	}
	var c config
	if got := TransportOf(c.slot); got != nil {
		t.Fatalf("zero Slot holds %v, want nil (the real network)", got)
	}
	ft := fakeTransport{name: "a"}
	Set(&c, ft)
	if got := TransportOf(c.slot); got != ft {
		t.Fatalf("after Set: %v, want %v", got, ft)
	}
}

func TestSetPanicsWithoutSlot(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Set on a config without a Slot did not panic")
		}
	}()
	var c struct{ Name string }
	Set(&c, fakeTransport{})
}
