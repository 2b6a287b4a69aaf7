package zre_test

import (
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/zre"
)

func ExampleDecode() {
	// A SHOUT to group "chat" with one content frame, as a C zyre node sends it.
	frames := [][]byte{
		{0xaa, 0xa1, 0x03, 0x02, 0x00, 0x03, 0x04, 'c', 'h', 'a', 't'},
		[]byte("hello"),
	}
	m, err := zre.Decode(frames)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.ID, m.Sequence, m.Group, string(m.Content[0]))

	// A HELLO followed by a stray frame is refused as a whole.
	hello := zre.Msg{ID: zre.MsgHello, Sequence: 1, Endpoint: "tcp://127.0.0.1:49152", Name: "a"}
	first, _ := hello.AppendEncode(nil)
	_, err = zre.Decode([][]byte{first, []byte("spoof")})
	fmt.Println(errors.Is(err, zre.ErrMalformed))
	// Output:
	// SHOUT 3 chat hello
	// true
}

func ExampleMsg_Frames() {
	m := zre.Msg{ID: zre.MsgWhisper, Sequence: 2, Content: [][]byte{[]byte("Hello")}}
	frames, err := m.Frames()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%x %s\n", frames[0], frames[1])
	// Output: aaa102020002 Hello
}

func ExampleParseBeacon() {
	b := zre.Beacon{
		Version: zre.BeaconV1,
		UUID:    uuid.MustParse("7d1c5a0e-9b4f-4e2a-8c3d-6b5a4f3e2d1c"),
		Port:    49152,
	}
	p := b.AppendMarshal(nil)
	fmt.Printf("%d octets: %x\n", len(p), p)

	got, err := zre.ParseBeacon(p)
	fmt.Println(got.UUID, got.Port, got.Stopping(), got.HasKey(), err)

	_, err = zre.ParseBeacon(p[:21])
	fmt.Println(err)
	// Output:
	// 22 octets: 5a5245017d1c5a0e9b4f4e2a8c3d6b5a4f3e2d1cc000
	// 7d1c5a0e-9b4f-4e2a-8c3d-6b5a4f3e2d1c 49152 false false <nil>
	// zre: bad beacon: version 1 beacon is 21 octets, want 22
}
