package zmtp

import (
	"context"
	"testing"
	"time"
)

// A connection with SendBound gets TCP_NOTSENT_LOWAT (128 KiB by
// default, or what NotSentLowat says), on both sides; one without keeps
// the system's.
func TestSendBoundNotSentLowat(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bound SendBound
		want  int
	}{
		{"default", SendBound{Target: 100 * time.Millisecond}, DefaultNotSentLowat},
		{"set", SendBound{Target: 100 * time.Millisecond, NotSentLowat: 32 << 10}, 32 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			r, err := ListenRouter("tcp", "127.0.0.1:0", Options{SendBound: tc.bound})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			d, err := DialDealer("tcp", r.Addr().String(), Options{Identity: []byte("d"), SendBound: tc.bound})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if err := d.SendContext(ctx, []byte("hi")); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Recv(ctx); err != nil {
				t.Fatal(err)
			}
			d.mu.Lock()
			got := notSentLowat(d.cur.nc)
			d.mu.Unlock()
			if got != tc.want {
				t.Errorf("dealer's TCP_NOTSENT_LOWAT %d, want %d", got, tc.want)
			}
			r.mu.Lock()
			rc := r.peers["d"]
			r.mu.Unlock()
			if got := notSentLowat(rc.nc); got != tc.want {
				t.Errorf("router connection's TCP_NOTSENT_LOWAT %d, want %d", got, tc.want)
			}
		})
	}
	// Off: the system's value (net.ipv4.tcp_notsent_lowat, "unlimited"
	// by default) is left alone.
	r, err := ListenRouter("tcp", "127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d, err := DialDealer("tcp", r.Addr().String(), Options{Identity: []byte("d")})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.SendContext(ctx, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Recv(ctx); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	got := notSentLowat(d.cur.nc)
	d.mu.Unlock()
	if got == DefaultNotSentLowat || got == 32<<10 {
		t.Errorf("without SendBound the dealer's TCP_NOTSENT_LOWAT is %d", got)
	}
}
