package zmtp

import (
	"context"
	"fmt"
)

type nullMechanism struct{}

func (nullMechanism) Name() string                 { return "NULL" }
func (nullMechanism) AsServer() bool               { return false }
func (nullMechanism) NewSession() (Session, error) { return nullSession{}, nil }

type nullSession struct{}

func (nullSession) Codec() FrameCodec { return nil }

// Handshake: the client sends READY and waits for READY or ERROR; the server
// waits for the client's READY, asks the authorizer, then answers READY or
// ERROR (as libzmq does with ZAP).
func (nullSession) Handshake(ctx context.Context, c CommandConn, server bool, local Metadata, auth Authorizer) (HandshakeResult, error) {
	ready := AppendMetadata(nil, local)
	if !server {
		if err := c.WriteCommand("READY", ready); err != nil {
			return HandshakeResult{}, err
		}
	}
	md, err := readReady(c)
	if err != nil {
		return HandshakeResult{}, err
	}
	if server {
		if auth != nil {
			if err := auth(ctx, AuthRequest{Mechanism: "NULL", Metadata: md}); err != nil {
				_ = WriteError(c, err.Error())
				return HandshakeResult{}, fmt.Errorf("zmtp: NULL: authorizer refused: %v: %w", err, ErrDenied)
			}
		}
		if err := c.WriteCommand("READY", ready); err != nil {
			return HandshakeResult{}, err
		}
	}
	return HandshakeResult{Metadata: md}, nil
}

func readReady(c CommandConn) (Metadata, error) {
	name, body, err := c.ReadCommand()
	if err != nil {
		return nil, err
	}
	switch name {
	case "READY":
		md, err := ParseMetadata(body)
		if err != nil {
			return nil, fmt.Errorf("zmtp: READY: %w", err)
		}
		return md, nil
	case "ERROR":
		return nil, parseError(body, "READY")
	default:
		return nil, fmt.Errorf("zmtp: NULL: unexpected command %q: %w", name, ErrProtocol)
	}
}

// WriteError sends an ERROR command with reason truncated to 255 octets.
func WriteError(c CommandConn, reason string) error {
	if len(reason) > 255 {
		reason = reason[:255]
	}
	return c.WriteCommand("ERROR", append([]byte{byte(len(reason))}, reason...))
}

// ParseError turns the body of a peer's ERROR command into an error wrapping
// ErrDenied through a *DeniedError (its Instead empty).
func ParseError(body []byte) error { return parseError(body, "") }

// parseError is ParseError for an ERROR in place of the command instead.
func parseError(body []byte, instead string) error {
	if len(body) == 0 || int(body[0]) > len(body)-1 {
		return fmt.Errorf("zmtp: peer sent a malformed ERROR: %w", &DeniedError{Instead: instead})
	}
	reason := body[1 : 1+int(body[0])]
	return fmt.Errorf("zmtp: peer sent ERROR %q: %w", reason, &DeniedError{Reason: string(reason), Instead: instead})
}
