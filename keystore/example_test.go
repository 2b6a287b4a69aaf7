package keystore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/zyre-go/zyre/keystore"
	"github.com/zyre-go/zyre/zre"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "keystore-example")
	defer os.RemoveAll(dir)
	home := filepath.Join(dir, "zyre")

	// Make the node's identity once ("zyre keys init").
	st, err := keystore.Open(home, keystore.Options{})
	if err != nil {
		panic(err)
	}
	// WorkFactor keeps the example fast; leave it 0 in real use.
	created, err := st.Init(ctx, keystore.InitOptions{
		Name:       "kitchen-pi",
		Protection: keystore.Protection{Passphrase: "correct horse battery staple", WorkFactor: 10},
	})
	if err != nil {
		panic(err)
	}

	// A node loads it with one call.
	id, err := keystore.LoadIdentity(ctx, home, keystore.Unlock{
		Passphrase: func(context.Context) (string, error) { return "correct horse battery staple", nil },
	})
	if err != nil {
		panic(err)
	}
	defer id.Wipe()
	pub, sec := id.CurveKeyPair()
	fmt.Println("name:", id.Name)
	fmt.Println("same key:", pub.Equal(created.CurveKey), sec.Public().Equal(pub))
	fmt.Println("uuid bound to key:", zre.IsBound(id.UUID, pub))
	fmt.Println("fingerprint length:", len(keystore.Fingerprint(pub)))

	// Share the public certificate in czmq's format.
	var cert bytes.Buffer
	if err := id.ExportZcert(&cert, true); err != nil {
		panic(err)
	}
	z, err := keystore.ParseZcert(&cert)
	if err != nil {
		panic(err)
	}
	name, _ := z.Meta("name")
	fmt.Println("zcert:", name, z.PublicKey.Equal(pub), z.SecretKey == nil)

	// A wrong passphrase is a clear error and changes nothing.
	_, err = st.Load(ctx, keystore.Unlock{
		Passphrase: func(context.Context) (string, error) { return "wrong", nil },
	})
	fmt.Println("wrong passphrase:", errors.Is(err, keystore.ErrWrongPassphrase))
	// Output:
	// name: kitchen-pi
	// same key: true true
	// uuid bound to key: true
	// fingerprint length: 19
	// zcert: kitchen-pi true true
	// wrong passphrase: true
}
