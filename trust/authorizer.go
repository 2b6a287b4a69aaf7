package trust

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/zmtp"
)

// ErrDenied is wrapped by the errors of the authorizer; the text after it
// is the reason sent to the client in the ZMTP ERROR command.
var ErrDenied = errors.New("trust: denied")

// AuthorizerOptions tune Authorizer.
type AuthorizerOptions struct {
	// Now gives the time of an admission; nil means the store's clock.
	Now func() time.Time
	// OnVerdict, if set, sees every verdict (with its observation), so the
	// node can raise KeyChanged events and log refusals. It runs on the
	// connection's goroutine and must not block.
	OnVerdict func(Observation, Verdict)
}

// Authorizer returns a zmtp.Authorizer for a ROUTER that admits peers with
// Admit. It reads the peer's UUID from the ZRE DEALER's Identity property
// (0x01 followed by the 16-octet UUID, or the bare 16 octets); the name is
// not known yet at that point, so the node calls Admit again with it on
// HELLO. NULL connections (no key) are admitted only in open mode. A
// denial's text (sent to the peer) says only "key changed for this peer",
// "key revoked" or "key not trusted"; OnVerdict gets the details.
func (s *Store) Authorizer(o AuthorizerOptions) zmtp.Authorizer {
	now := o.Now
	if now == nil {
		now = s.opts.Now
	}
	return func(ctx context.Context, req zmtp.AuthRequest) error {
		addr := ""
		if req.RemoteAddr != nil {
			addr = req.RemoteAddr.String()
		}
		if len(req.PublicKey) == 0 {
			p, err := s.Policy()
			if err != nil {
				return fmt.Errorf("%w: trust store unavailable", ErrDenied)
			}
			if p.Mode == ModeOpen {
				return nil
			}
			return fmt.Errorf("%w: %s connections need CURVE under the %s policy", ErrDenied, req.Mechanism, p.Mode)
		}
		key, err := curve.NewPublicKey(req.PublicKey)
		if err != nil || key.IsZero() {
			return fmt.Errorf("%w: bad public key", ErrDenied)
		}
		id, ok := IdentityUUID(req.Metadata)
		if !ok {
			return fmt.Errorf("%w: no ZRE identity", ErrDenied)
		}
		obs := Observation{UUID: id, Key: key, Addr: addr}
		v, err := s.Admit(ctx, obs, now())
		if o.OnVerdict != nil {
			o.OnVerdict(obs, v)
		}
		if err != nil {
			return fmt.Errorf("%w: trust store unavailable", ErrDenied)
		}
		if !v.Allow {
			// Tell the peer what kind of refusal, not our records' details.
			switch {
			case v.KeyChange != nil:
				return fmt.Errorf("%w: key changed for this peer", ErrDenied)
			case v.Record.State == StateRevoked && v.Record.Key == key:
				return fmt.Errorf("%w: key revoked", ErrDenied)
			}
			return fmt.Errorf("%w: key not trusted", ErrDenied)
		}
		return nil
	}
}

// IdentityUUID reads the UUID from the Identity property a ZRE DEALER
// sends: 0x01 then 16 octets (the C reference), or 16 octets.
func IdentityUUID(md zmtp.Metadata) (uuid.UUID, bool) {
	b, ok := md.Get("Identity")
	if !ok {
		return uuid.UUID{}, false
	}
	switch {
	case len(b) == 17 && b[0] == 1:
		b = b[1:]
	case len(b) == 16:
	default:
		return uuid.UUID{}, false
	}
	return uuid.UUID(b), true
}
