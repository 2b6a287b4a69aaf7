package curve_test

import (
	"fmt"
	"log"

	"github.com/zyre-go/zyre/curve"
)

// A full CurveZMQ handshake between a client and a server in memory, then
// one message each way. In a real connection each command body travels in
// a ZMTP command frame and each MESSAGE body in a ZMTP data frame.
func ExampleNewClient() {
	serverPub, serverSec, err := curve.GenerateKeyPair(nil)
	if err != nil {
		log.Fatal(err)
	}
	clientPub, clientSec, err := curve.GenerateKeyPair(nil)
	if err != nil {
		log.Fatal(err)
	}
	server, err := curve.NewServer(curve.ServerConfig{Public: serverPub, Secret: serverSec})
	if err != nil {
		log.Fatal(err)
	}
	client, err := curve.NewClient(curve.ClientConfig{Public: clientPub, Secret: clientSec, ServerKey: serverPub})
	if err != nil {
		log.Fatal(err)
	}

	hello, err := client.Hello() // C: HELLO
	if err != nil {
		log.Fatal(err)
	}
	welcome, err := server.Hello(hello) // S: WELCOME
	if err != nil {
		log.Fatal(err)
	}
	initiate, err := client.Welcome(welcome, []byte("\x0bSocket-Type\x00\x00\x00\x06DEALER")) // C: INITIATE
	if err != nil {
		log.Fatal(err)
	}
	who, clientMeta, err := server.Initiate(initiate)
	if err != nil {
		log.Fatal(err)
	}
	// Here the server decides whether it trusts who; to refuse, it would
	// send curve.ErrorCommand("400") and close.
	fmt.Println("server sees the client key:", who.Equal(clientPub))
	fmt.Printf("client metadata: %q\n", clientMeta)
	ready, serverSess, err := server.Ready([]byte("\x0bSocket-Type\x00\x00\x00\x06ROUTER")) // S: READY
	if err != nil {
		log.Fatal(err)
	}
	serverMeta, clientSess, err := client.Ready(ready)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("server metadata: %q\n", serverMeta)

	msg, err := clientSess.Seal(nil, curve.FlagMore, []byte("hello"))
	if err != nil {
		log.Fatal(err)
	}
	flags, payload, err := serverSess.Open(nil, msg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("server got %q more=%v (%d octets on the wire)\n", payload, flags&curve.FlagMore != 0, len(msg))

	msg, _ = serverSess.Seal(nil, 0, []byte("welcome"))
	_, payload, err = clientSess.Open(nil, msg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("client got %q\n", payload)

	// A replayed message is refused.
	_, _, err = clientSess.Open(nil, msg)
	fmt.Println("replay refused:", err != nil)
	// Output:
	// server sees the client key: true
	// client metadata: "\vSocket-Type\x00\x00\x00\x06DEALER"
	// server metadata: "\vSocket-Type\x00\x00\x00\x06ROUTER"
	// server got "hello" more=true (38 octets on the wire)
	// client got "welcome"
	// replay refused: true
}

// Splitting a command body for a ZMTP layer that passes (name, data) pairs.
func ExampleSplitCommand() {
	name, data, err := curve.SplitCommand(curve.ErrorCommand("400"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s %q\n", name, data)
	body := curve.AppendCommand(nil, string(name), data)
	reason, err := curve.ParseError(body)
	fmt.Println(reason, err)
	// Output:
	// ERROR "\x03400"
	// 400 <nil>
}

// A socket that makes many handshakes prepares its long-term key pair once.
func ExampleNewKeyPair() {
	spub, ssec, err := curve.GenerateKeyPair(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	kp, err := curve.NewKeyPair(spub, ssec)
	if err != nil {
		fmt.Println(err)
		return
	}
	// One Server per connection, each sharing kp.
	for range 2 {
		s, err := curve.NewServer(curve.ServerConfig{Key: kp})
		if err != nil {
			fmt.Println(err)
			return
		}
		s.Wipe()
	}
	fmt.Println(kp.Public().Equal(spub))
	// Output:
	// true
}
