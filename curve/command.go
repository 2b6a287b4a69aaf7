package curve

import (
	"fmt"
)

// Command bodies.
//
// Every handshake method of Client and Server takes and returns a whole
// ZMTP command body as it appears on the wire inside a command frame: the
// name-length octet, the name, then the data (a HELLO is `\x05HELLO` + 194
// octets). A ZMTP layer that hands commands around as (name, data) pairs
// converts with SplitCommand and AppendCommand. MESSAGE bodies travel in
// ZMTP data frames (libzmq sets no COMMAND and no MORE bit on the outer
// frame), so Session.Seal and Session.Open work on the whole frame body.

// SplitCommand splits a command body into its name and the data after it.
// Both alias body.
func SplitCommand(body []byte) (name, data []byte, err error) {
	if len(body) == 0 || body[0] == 0 || len(body) < 1+int(body[0]) {
		return nil, nil, fmt.Errorf("%w: malformed command name", ErrHandshake)
	}
	n := 1 + int(body[0])
	return body[1:n], body[n:], nil
}

// AppendCommand appends the command body for name and data to dst. name
// must be 1 to 255 octets; a longer name is truncated.
func AppendCommand(dst []byte, name string, data []byte) []byte {
	if len(name) > 255 {
		name = name[:255]
	}
	dst = append(dst, byte(len(name)))
	dst = append(dst, name...)
	return append(dst, data...)
}

// MaxErrorReason is the longest reason an ERROR command carries.
const MaxErrorReason = 255

// ErrorCommand returns the body of an ERROR command: `\x05ERROR`, one
// length octet and the reason. The reason is truncated to 255 octets and
// every octet outside printable ASCII becomes '?', as RFC 26 allows only
// ASCII. libzmq sends a 3-digit ZAP status code such as "400".
func ErrorCommand(reason string) []byte {
	if len(reason) > MaxErrorReason {
		reason = reason[:MaxErrorReason]
	}
	b := make([]byte, 0, len(nameError)+1+len(reason))
	b = append(b, nameError...)
	b = append(b, byte(len(reason)))
	for i := 0; i < len(reason); i++ {
		c := reason[i]
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b = append(b, c)
	}
	return b
}

// ParseError returns the reason of an ERROR command body. The body must be
// exactly `\x05ERROR`, a length octet and that many printable ASCII octets.
// The reason comes from the peer: quote it before logging it.
func ParseError(body []byte) (reason string, err error) {
	if !hasName(body, nameError) {
		return "", fmt.Errorf("%w: want ERROR, got %s", ErrHandshake, commandName(body))
	}
	if len(body) < len(nameError)+1 {
		return "", fmt.Errorf("%w: ERROR is %d octets, want at least 7", ErrHandshake, len(body))
	}
	n := int(body[len(nameError)])
	r := body[len(nameError)+1:]
	if len(r) != n {
		return "", fmt.Errorf("%w: ERROR reason is %d octets, its length octet says %d", ErrHandshake, len(r), n)
	}
	for i, c := range r {
		if c < 0x20 || c > 0x7e {
			return "", fmt.Errorf("%w: ERROR reason has a non-ASCII octet %#02x at offset %d", ErrHandshake, c, i)
		}
	}
	return string(r), nil
}

// rejected turns an ERROR command received during the handshake into an
// error wrapping ErrRejected (or ErrHandshake if the ERROR is malformed).
func rejected(body []byte) error {
	reason, err := ParseError(body)
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: ERROR %q", ErrRejected, reason)
}
