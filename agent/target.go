package agent

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/zyre-go/zyre/trust"
)

// FindTarget finds the peer q names (a name, a UUID or fingerprint prefix)
// for a command that acts only on trusted peers (a transfer's PEER,
// receive's --from): with tofu (--trust tofu), keys met on first use count
// as trusted too. When q matches several records, only those the command
// could act on are candidates: a revoked record is never a target, and a
// stranger (tofu, without tofu) that took a trusted peer's name does not
// make that name ambiguous. One candidate left is the answer. Several left
// give an error wrapping trust.ErrAmbiguous that lists them and says to
// name one by its UUID; none left, the store's own error. A q that matches
// one record gives it whatever its state: the caller says why it does not
// act on it (revoked, not trusted).
func FindTarget(st *trust.Store, q string, tofu bool) (trust.Record, error) {
	r, err := st.Find(q)
	var ae *trust.AmbiguousError
	if !errors.As(err, &ae) {
		return r, err
	}
	var ok []trust.Record
	for _, c := range ae.Candidates {
		switch c.State {
		case trust.StateVerified, trust.StateIntroduced:
			ok = append(ok, c)
		case trust.StateTOFU:
			if tofu {
				ok = append(ok, c)
			}
		}
	}
	switch len(ok) {
	case 0:
		return trust.Record{}, err
	case 1:
		return ok[0], nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%q names %d trusted peers:", q, len(ok))
	ids := make([]string, len(ok))
	for i, c := range ok {
		fmt.Fprintf(&b, " %s %s %s %s;", strconv.Quote(c.Name), c.ShortUUID(), c.Fingerprint, c.State)
		ids[i] = c.ShortUUID()
	}
	fmt.Fprintf(&b, " name one by its UUID (%s)", strings.Join(ids, " or "))
	return trust.Record{}, fmt.Errorf("%w: %s", trust.ErrAmbiguous, b.String())
}
