package pairing_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/pairing"
	"github.com/zyre-go/zyre/trust"
)

// identity makes a throwaway identity and trust store for the examples.
func identity(name string) (*keystore.Identity, *trust.Store, func()) {
	dir, err := os.MkdirTemp("", "pairing-example")
	if err != nil {
		log.Fatal(err)
	}
	ks, _ := keystore.Open(dir, keystore.Options{Logger: slog.New(slog.DiscardHandler)})
	id, err := ks.Init(context.Background(), keystore.InitOptions{Name: name, Protection: keystore.Protection{Plaintext: true}})
	if err != nil {
		log.Fatal(err)
	}
	st, _ := trust.Open(dir, trust.Options{})
	return id, st, func() { os.RemoveAll(dir) }
}

// An app shows the token's URI as a QR code on its screen; the other
// device scans it and calls Join. Both end up with each other verified.
func Example() {
	ctx := context.Background()
	alice, aliceTrust, done := identity("alice")
	defer done()
	bob, bobTrust, done2 := identity("bob")
	defer done2()

	d, tok, err := pairing.NewDisplayer(pairing.Options{Identity: alice, Recorder: aliceTrust, Listen: "127.0.0.1:0"})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	uri := tok.URI() // render this as a QR code

	res, err := pairing.Join(ctx, uri, pairing.Options{Identity: bob, Recorder: bobTrust})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("bob paired with", res.PeerName, "by", res.Method)
	dres, err := d.Wait(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("alice paired with", dres.PeerName)
	r, _, _ := aliceTrust.Lookup(dres.PeerKey)
	fmt.Println("alice's record of bob:", r.State)
	// Output:
	// bob paired with alice by qr
	// alice paired with bob
	// alice's record of bob: verified
}

// Two terminals without a camera: one shows the short code, the other
// types it. Both show the same 6-digit number afterwards.
func ExampleJoinCode() {
	ctx := context.Background()
	alice, _, done := identity("alice")
	defer done()
	bob, _, done2 := identity("bob")
	defer done2()

	// Loopback keeps the example on this host; on a network, leave it out.
	d, tok, err := pairing.NewDisplayer(pairing.Options{Identity: alice, Loopback: true, DisableDiscovery: true})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	code, endpoint := tok.ShortCode(), d.CodeAddr() // shown to the user

	// With discovery (the default) the endpoint may be "": JoinCode finds
	// the displayer on the beacon interface.
	res, err := pairing.JoinCode(ctx, code, endpoint, pairing.Options{Identity: bob, Loopback: true})
	if err != nil {
		log.Fatal(err)
	}
	dres, err := d.Wait(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Method, res.PeerName, dres.PeerName, len(res.Comparison), res.Comparison == dres.Comparison)
	// Output: code alice bob 6 true
}

// A mistyped token says so.
func ExampleParseToken() {
	alice, _, done := identity("alice")
	defer done()
	d, tok, err := pairing.NewDisplayer(pairing.Options{Identity: alice, DisableCode: true, Loopback: true})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	uri := []byte(tok.URI())
	uri[20] = map[bool]byte{true: 'B', false: 'A'}[uri[20] == 'A'] // one typo

	back, err := pairing.ParseToken(tok.URI())
	fmt.Println(back.Key == tok.Key, err)
	_, err = pairing.ParseToken(string(uri))
	fmt.Println(err)
	// Output:
	// true <nil>
	// pairing: token: checksum mismatch (mistyped or damaged token): pairing: bad token
}
