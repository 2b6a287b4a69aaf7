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
	usable := func(c *trust.Record) bool {
		return c.State == trust.StateVerified || c.State == trust.StateIntroduced || tofu && c.State == trust.StateTOFU
	}
	r, err := st.FindUsable(q, usable)
	var ae *trust.AmbiguousError
	if !errors.As(err, &ae) || !usable(&ae.Candidates[0]) {
		return r, err // (none usable: the store's own error)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%q names %d trusted peers:", q, len(ae.Candidates))
	ids := make([]string, len(ae.Candidates))
	for i, c := range ae.Candidates {
		fmt.Fprintf(&b, " %s %s %s %s;", strconv.Quote(c.Name), c.ShortUUID(), c.Fingerprint, c.State)
		ids[i] = c.ShortUUID()
	}
	fmt.Fprintf(&b, " name one by its UUID (%s)", strings.Join(ids, " or "))
	return trust.Record{}, fmt.Errorf("%w: %s", trust.ErrAmbiguous, b.String())
}
