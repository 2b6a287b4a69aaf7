//go:build tools

package tools

import (
	_ "filippo.io/age"
	_ "filippo.io/edwards25519"
	_ "github.com/go-zeromq/zmq4"
	_ "github.com/google/uuid"
	_ "github.com/mdp/qrterminal/v3"
	_ "golang.org/x/crypto/nacl/box"
	_ "golang.org/x/sys/unix"
)
