package zremsg_test

import (
	"errors"
	"fmt"

	"github.com/zyre-go/zyre/zre/zremsg"
)

func ExampleDecode() {
	// A SHOUT to group "chat" with one content frame, as a C zyre node sends it.
	frames := [][]byte{
		{0xaa, 0xa1, 0x03, 0x02, 0x00, 0x03, 0x04, 'c', 'h', 'a', 't'},
		[]byte("hello"),
	}
	m, err := zremsg.Decode(frames)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.ID, m.Sequence, m.Group, string(m.Content[0]))

	// A HELLO followed by a stray frame is refused as a whole.
	hello := zremsg.Msg{ID: zremsg.MsgHello, Sequence: 1, Endpoint: "tcp://127.0.0.1:49152", Name: "a"}
	first, _ := hello.AppendEncode(nil)
	_, err = zremsg.Decode([][]byte{first, []byte("spoof")})
	fmt.Println(errors.Is(err, zremsg.ErrMalformed))
	// Output:
	// SHOUT 3 chat hello
	// true
}

func ExampleMsg_Frames() {
	m := zremsg.Msg{ID: zremsg.MsgWhisper, Sequence: 2, Content: [][]byte{[]byte("Hello")}}
	frames, err := m.Frames()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%x %s\n", frames[0], frames[1])
	// Output: aaa102020002 Hello
}
