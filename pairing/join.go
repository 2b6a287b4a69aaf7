package pairing

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zmtp"
	"github.com/zyre-go/zyre/zre"
)

// Join pairs with the displayer of a token (its URI, as scanned): it
// connects over CURVE to the key in the token at the token's endpoint
// hints, proves the one-time secret, checks the displayer's proof, and
// records the displayer as verified (method "qr").
func Join(ctx context.Context, uri string, opts Options) (Result, error) {
	opts = opts.withDefaults()
	if opts.Identity == nil {
		return Result{}, ErrNoIdentity
	}
	tok, err := ParseToken(uri)
	if err != nil {
		return Result{}, err
	}
	if !opts.Now().Before(tok.Expires) {
		return Result{}, fmt.Errorf("pairing: token %x expired at %s: %w", tok.ID, tok.Expires.Format(time.RFC3339), ErrExpired)
	}
	if len(tok.Hints) == 0 {
		return Result{}, fmt.Errorf("pairing: token %x has no endpoint hints: %w", tok.ID, ErrUnreachable)
	}
	eps := make([]string, len(tok.Hints))
	for i, h := range tok.Hints {
		eps[i] = h.String()
	}
	pub, sec := opts.Identity.CurveKeyPair()
	c, ep, err := dialCurveAt(ctx, eps, pub, sec, tok.Key, opts)
	sec.Wipe()
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	binding, err := trust.NewBinding(opts.Identity.Signer(), pub, opts.Now())
	if err != nil {
		return Result{}, fmt.Errorf("pairing: binding: %w", err)
	}
	proof := qrProof(tok.secret[:], "scanner", tok.Key, pub, tok.ID[:])
	// The displayer's user is asked who is pairing (spec/pairing.md,
	// "QR path"): wait for the answer as long as ctx allows, as for the
	// short code's comparison.
	msg := newMsg(cmdQRProof, tok.ID[:], proof, binding, []byte(opts.Identity.Name))
	if err := c.Send(msg...); err != nil {
		return Result{}, fmt.Errorf("pairing: send %s: %v: %w", cmdQRProof, err, ErrUnreachable)
	}
	f, err := awaitReply(ctx, c, cmdQRConfirm)
	if err != nil {
		if ctx.Err() != nil {
			// The displayer's user may still be asked about us: say we
			// went, so that it does not pair a device that is gone.
			lastWord(ctx, c, opts, fmt.Errorf("pairing: the scanner gave up waiting: %v: %w", ctx.Err(), ErrRefused))
		}
		return Result{}, err
	}
	if !hmac.Equal(f[0], qrProof(tok.secret[:], "displayer", tok.Key, pub, tok.ID[:])) {
		return Result{}, fmt.Errorf("pairing: displayer %s: %w", trust.Fingerprint(tok.Key), ErrBadProof)
	}
	info, err := checkPeerInfo(f[1], f[2], tok.Key)
	if err != nil {
		return Result{}, err
	}
	res := Result{Method: "qr", PeerKey: tok.Key, PeerUUID: tok.UUID, PeerName: info.name, PeerSigningKey: info.signingKey, PeerAddr: ep, At: opts.Now()}
	err = nameCheck(opts, &res)
	if err == nil {
		err = accept(ctx, opts, &res)
	}
	if err != nil {
		lastWord(ctx, c, opts, err) // the displayer must not report a success
		return Result{}, err
	}
	bye(ctx, c, opts)
	return res, nil
}

// JoinCode pairs by short code with the displayer whose code endpoint
// (Displayer.CodeAddr) is endpoint, or, when endpoint is "", with the
// displayer that Discover finds on the beacon interface: it asks the
// endpoint for the
// displayer's CURVE key (in plaintext), connects over CURVE, and runs CPace
// with the code bound to both CURVE keys. Key confirmation fails (ErrWrongCode)
// for a wrong code or a man in the middle. It records the displayer as
// verified (method "code"); Result.Comparison is the 6-digit number both
// sides show. Once its own user said yes it waits for the displayer's
// user as long as ctx allows: the displayer says when it refuses, expires
// or is closed, but a displayer whose host vanishes says nothing, so give
// ctx a deadline (zyre pair uses its --timeout).
func JoinCode(ctx context.Context, code, endpoint string, opts Options) (Result, error) {
	opts = opts.withDefaults()
	if opts.Identity == nil {
		return Result{}, ErrNoIdentity
	}
	prs, err := NormalizeCode(code)
	if err != nil {
		return Result{}, err
	}
	if endpoint == "" {
		if endpoint, err = Discover(ctx, prs, opts); err != nil {
			return Result{}, err
		}
		opts.Logger.Info("pairing: found the displayer", "endpoint", endpoint)
	}
	host, _, err := net.SplitHostPort(endpoint)
	if err != nil {
		return Result{}, fmt.Errorf("pairing: endpoint %q: %v: %w", endpoint, err, ErrUnreachable)
	}
	dkey, port, err := askKey(ctx, endpoint, opts)
	if err != nil {
		return Result{}, err
	}
	pub, sec := opts.Identity.CurveKeyPair()
	c, ep, err := dialCurveAt(ctx, []string{net.JoinHostPort(host, strconv.Itoa(int(port)))}, pub, sec, dkey, opts)
	sec.Wipe()
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	var sid [cpaceSIDSize]byte
	r := opts.Rand
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, sid[:]); err != nil {
		return Result{}, fmt.Errorf("pairing: session id: %w", err)
	}
	p, err := newCPaceParty(opts.Rand, []byte(prs), cpaceCI(dkey.Bytes(), pub.Bytes()), sid[:])
	if err != nil {
		return Result{}, err
	}
	f, err := exchange(ctx, c, opts, newMsg(cmdCodeA, sid[:], p.share), cmdCodeB)
	if err != nil {
		return Result{}, err
	}
	K, err := p.sharedK(f[0])
	if err != nil {
		return Result{}, err
	}
	keys, err := deriveKeys(sid[:], K, p.share, f[0])
	if err != nil {
		return Result{}, err
	}
	if !hmac.Equal(f[1], keys.tagB) {
		err := fmt.Errorf("pairing: displayer %s at %s: %w", trust.Fingerprint(dkey), endpoint, ErrWrongCode)
		lastWord(ctx, c, opts, err) // the displayer reports it at once
		return Result{}, err
	}
	info, err := checkPeerInfo(f[2], f[3], dkey)
	if err != nil {
		lastWord(ctx, c, opts, err)
		return Result{}, err
	}
	res := Result{Method: "code", PeerKey: dkey, PeerUUID: zre.UUIDFromKey(dkey), PeerName: info.name, PeerSigningKey: info.signingKey, Comparison: keys.number, PeerAddr: ep}
	if err := nameCheck(opts, &res); err != nil {
		lastWord(ctx, c, opts, err)
		return Result{}, err
	}
	binding, err := trust.NewBinding(opts.Identity.Signer(), pub, opts.Now())
	if err != nil {
		return Result{}, fmt.Errorf("pairing: binding: %w", err)
	}
	if err := c.Send(newMsg(cmdCodeC, keys.tagA, binding, []byte(opts.Identity.Name))...); err != nil {
		return Result{}, fmt.Errorf("pairing: send %s: %v: %w", cmdCodeC, err, ErrUnreachable)
	}
	// The displayer shows the number as soon as CODE-C checks out; so do
	// we, and each side's refusal reaches the other at once.
	if err := confirmTogether(ctx, c, opts, res); err != nil {
		return Result{}, err
	}
	res.At = opts.Now()
	noConfirm := opts
	noConfirm.Confirm = nil // asked above, before the displayer recorded us
	if err := accept(ctx, noConfirm, &res); err != nil {
		lastWord(ctx, c, opts, err)
		return Result{}, err
	}
	bye(ctx, c, opts)
	return res, nil
}

// confirmTogether asks our user (Options.Confirm) while it listens to the
// displayer: an ERR from it (its user refused, or it found our code
// wrong) cancels the question and is returned at once. On our yes it sends
// CODE-YES and waits for CODE-OK, which the displayer sends once its own
// user said yes too; on our no it sends ERR refused.
func confirmTogether(ctx context.Context, c *zmtp.Dealer, opts Options, res Result) error {
	rctx, cancel := context.WithCancel(ctx)
	type reply struct {
		f   [][]byte
		err error
	}
	replies := make(chan reply, 1)
	go func() {
		f, err := awaitReply(rctx, c, cmdCodeOK)
		replies <- reply{f, err}
	}()
	verdict := make(chan error, 1)
	if opts.Confirm == nil {
		verdict <- nil
	} else {
		go func() { verdict <- opts.Confirm(rctx, res) }()
	}
	// Both goroutines are ours: we return only once both have, so that
	// the user's question is down when JoinCode returns (Confirm returns
	// once rctx is cancelled).
	gotReply, gotVerdict := false, false
	defer func() {
		cancel()
		if !gotReply {
			<-replies
		}
		if !gotVerdict {
			<-verdict
		}
	}()
	select {
	case r := <-replies:
		gotReply = true
		// Before our yes the displayer can only refuse.
		if r.err == nil {
			r.err = fmt.Errorf("pairing: CODE-OK before CODE-YES: %w", ErrProtocol)
		}
		if ctx.Err() != nil {
			// Our context ended (Ctrl-C, our deadline) with the question
			// up: the displayer is asking too, and is told.
			lastWord(ctx, c, opts, fmt.Errorf("pairing: not confirmed: %v: %w", ctx.Err(), ErrRefused))
		}
		return r.err
	case err := <-verdict:
		gotVerdict = true
		if err != nil && ctx.Err() != nil {
			// Our caller gave up (its deadline, Ctrl-C), which
			// cancelled our user's question too: not a refusal, the
			// same error as when the wait for CODE-OK returns first,
			// and the displayer, asking too, is told.
			lastWord(ctx, c, opts, fmt.Errorf("pairing: not confirmed: %v: %w", ctx.Err(), ErrRefused))
			return fmt.Errorf("pairing: waiting for %s: %w", cmdCodeOK, ctx.Err())
		}
		if err != nil {
			err = fmt.Errorf("pairing: not confirmed: %v: %w", err, ErrRefused)
			lastWord(ctx, c, opts, err)
			return err
		}
	}
	if err := c.Send(newMsg(cmdCodeYes)...); err != nil {
		return fmt.Errorf("pairing: send %s: %v: %w", cmdCodeYes, err, ErrUnreachable)
	}
	r := <-replies
	gotReply = true
	return r.err
}

// awaitReply waits for the reply want or an ERR; unlike exchange it waits
// as long as ctx allows, since a person on the other side is deciding.
func awaitReply(ctx context.Context, c conn, want string) ([][]byte, error) {
	m, err := c.Recv(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("pairing: waiting for %s: %w", want, ctx.Err())
		}
		return nil, fmt.Errorf("pairing: waiting for %s: %v: %w", want, err, ErrUnreachable)
	}
	return expectReply(m, want)
}

// lastWord tells the displayer why we stop (an ERR), and waits at most
// Options.Linger for it to be written before the connection closes, even
// when ctx has ended: that is often why we stop.
func lastWord(ctx context.Context, c *zmtp.Dealer, opts Options, err error) {
	if c.Send(errMsg(err)...) != nil {
		return
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.Linger)
	defer cancel()
	_ = c.Flush(fctx)
}

// askKey gets the displayer's CURVE key and port from its plaintext advert.
// Nothing it returns is trusted: CPace binds the key.
func askKey(ctx context.Context, endpoint string, opts Options) (curve.PublicKey, uint16, error) {
	if err := probe(ctx, endpoint, opts.Timeout); err != nil {
		return curve.PublicKey{}, 0, err
	}
	d, err := zmtp.DialDealer("tcp", endpoint, zmtp.Options{MaxMsgSize: maxMsgSize, Logger: opts.Logger})
	if err != nil {
		return curve.PublicKey{}, 0, fmt.Errorf("pairing: %s: %v: %w", endpoint, err, ErrUnreachable)
	}
	defer d.Close()
	f, err := exchange(ctx, d, opts, newMsg(cmdWho), cmdMe)
	if err != nil {
		if errors.Is(err, ErrUnreachable) {
			return curve.PublicKey{}, 0, fmt.Errorf("pairing: no answer from the code endpoint %s: %w", endpoint, err)
		}
		return curve.PublicKey{}, 0, err
	}
	key, err := curve.NewPublicKey(f[0])
	if err != nil || key.IsZero() || len(f[1]) != 2 {
		return curve.PublicKey{}, 0, fmt.Errorf("pairing: malformed key advert from %s: %w", endpoint, ErrProtocol)
	}
	port := binary.BigEndian.Uint16(f[1])
	if port == 0 {
		return curve.PublicKey{}, 0, fmt.Errorf("pairing: key advert from %s with port 0: %w", endpoint, ErrProtocol)
	}
	return key, port, nil
}

// bye ends a successful exchange: the displayer answers BYE, so that the
// scanner's BYE is known to have arrived before the connection closes. It
// waits at most Options.Linger; the pairing is done either way.
func bye(ctx context.Context, c conn, opts Options) {
	if c.Send(newMsg(cmdBye)...) != nil {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, opts.Linger)
	defer cancel()
	_, _ = c.Recv(lctx)
}

// conn is the scanner's side of a connection.
type conn interface {
	Send(frames ...[]byte) error
	Recv(ctx context.Context) (zmtp.Message, error)
	Close() error
}

// exchange sends a message and waits (at most Options.Timeout) for the
// reply want, or an ERR, which it returns as an error.
func exchange(ctx context.Context, c conn, opts Options, msg [][]byte, want string) ([][]byte, error) {
	if err := c.Send(msg...); err != nil {
		return nil, fmt.Errorf("pairing: send %s: %v: %w", msg[1], err, ErrUnreachable)
	}
	rctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	m, err := c.Recv(rctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("pairing: waiting for %s: %w", want, ctx.Err())
		}
		return nil, fmt.Errorf("pairing: no %s within %s: %v: %w", want, opts.Timeout, err, ErrUnreachable)
	}
	return expectReply(m, want)
}

// expectReply is the frames of m if it is the reply want; an ERR is returned
// as the error it carries, anything else as ErrProtocol.
func expectReply(m zmtp.Message, want string) ([][]byte, error) {
	cmd, f, err := parseMsg(m.Frames)
	if err != nil {
		return nil, err
	}
	switch cmd {
	case want:
		return f, nil
	case cmdErr:
		return nil, remoteErr(f)
	}
	return nil, fmt.Errorf("pairing: got %s, want %s: %w", cmd, want, ErrProtocol)
}

// dialCurve connects to the first endpoint whose peer completes a CURVE
// handshake as serverKey. A peer with another key fails the handshake: its
// error wraps ErrHandshake.
func dialCurve(ctx context.Context, endpoints []string, pub curve.PublicKey, sec curve.SecretKey, serverKey curve.PublicKey, opts Options) (*zmtp.Dealer, error) {
	d, _, err := dialCurveAt(ctx, endpoints, pub, sec, serverKey, opts)
	return d, err
}

// dialCurveAt is dialCurve that also returns the endpoint connected to.
func dialCurveAt(ctx context.Context, endpoints []string, pub curve.PublicKey, sec curve.SecretKey, serverKey curve.PublicKey, opts Options) (*zmtp.Dealer, string, error) {
	var errs []error
	for _, ep := range endpoints {
		// A plain TCP connect first, closed at once: the Dealer retries a
		// refused connection silently, so this is what reports one.
		if err := probe(ctx, ep, opts.Timeout); err != nil {
			errs = append(errs, err)
			continue
		}
		w := &watchMech{inner: zmtp.CurveClient(zmtp.CurveClientConfig{Public: pub, Secret: sec, ServerKey: serverKey}), done: make(chan error, 1)}
		d, err := zmtp.DialDealer("tcp", ep, zmtp.Options{Mechanism: w, MaxMsgSize: maxMsgSize, Logger: opts.Logger, HandshakeTimeout: opts.Timeout})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", ep, err))
			continue
		}
		t := time.NewTimer(opts.Timeout)
		select {
		case err = <-w.done:
		case <-t.C:
			err = fmt.Errorf("pairing: %s: no CURVE handshake within %s: %w", ep, opts.Timeout, ErrUnreachable)
		case <-ctx.Done():
			err = fmt.Errorf("pairing: connecting to %s: %w", ep, ctx.Err())
		}
		t.Stop()
		if err == nil {
			return d, ep, nil
		}
		d.Close()
		if ctx.Err() != nil {
			return nil, "", err
		}
		if !errors.Is(err, ErrUnreachable) {
			err = fmt.Errorf("pairing: %s: %w: %v", ep, ErrHandshake, err)
		}
		errs = append(errs, err)
	}
	return nil, "", errors.Join(errs...)
}

// probe opens and closes a TCP connection to ep: a zmtp Dealer retries a
// refused connection silently, so this is what reports one at once.
func probe(ctx context.Context, ep string, timeout time.Duration) error {
	var nd net.Dialer
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := nd.DialContext(pctx, "tcp", ep)
	if err != nil {
		return fmt.Errorf("pairing: %s: %v: %w", ep, err, ErrUnreachable)
	}
	return c.Close()
}

// watchMech wraps a mechanism to report the first handshake's outcome.
type watchMech struct {
	inner zmtp.Mechanism
	done  chan error
}

func (w *watchMech) Name() string   { return w.inner.Name() }
func (w *watchMech) AsServer() bool { return w.inner.AsServer() }
func (w *watchMech) NewSession() (zmtp.Session, error) {
	s, err := w.inner.NewSession()
	if err != nil {
		w.report(err)
		return nil, err
	}
	return &watchSession{Session: s, w: w}, nil
}

func (w *watchMech) report(err error) {
	select {
	case w.done <- err:
	default:
	}
}

type watchSession struct {
	zmtp.Session
	w *watchMech
}

func (s *watchSession) Handshake(ctx context.Context, c zmtp.CommandConn, server bool, local zmtp.Metadata, auth zmtp.Authorizer) (zmtp.HandshakeResult, error) {
	r, err := s.Session.Handshake(ctx, c, server, local, auth)
	s.w.report(err)
	return r, err
}
