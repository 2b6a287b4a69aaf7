package pairing

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/internal/beacon"
	"github.com/zyre-go/zyre/trust"
	"github.com/zyre-go/zyre/zmtp"
	"github.com/zyre-go/zyre/zre"
)

// ErrClosed is returned by Wait when the Displayer was closed first.
var ErrClosed = errors.New("pairing: displayer closed")

// Displayer shows a token and waits for one device to pair with it. Its
// serving goroutine owns the pairing state (attempts, single use, the
// short-code exchange); Wait only waits for the outcome, and late comers
// keep getting clear refusals until Close.
type Displayer struct {
	opts    Options
	tok     Token
	key     curve.PublicKey
	binding []byte
	router  *zmtp.Router
	advert  *zmtp.Router        // nil when the short code is off
	ann     *beacon.Service     // nil without discovery
	iface   string              // where the hints come from, for display
	verdict chan confirmVerdict // our user's answers (Confirm)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	outcome struct {
		once sync.Once
		done chan struct{}
		res  Result
		err  error
	}
	closeOnce sync.Once
}

// CodeSpent tells the displayer's owner (Options.OnCode) that a short
// code was spent by a failed exchange, and what is shown instead.
type CodeSpent struct {
	// By is the device that spent it (as far as it said who it is).
	By Attempt
	// Why says how, for a person: "tried a wrong code", "did not prove
	// the code within 10s", "refused the comparison", ...
	Why string
	// Code is the fresh short code now shown (formatted as
	// Token.ShortCode), and Endpoint where a joiner that is not on the
	// network asks for it (Displayer.CodeAddr); Code is "" when the
	// pairing shows no more codes (Options.MaxCodes were shown): only
	// the QR token pairs then.
	Code, Endpoint string
	// Spent is how many codes this pairing has spent so far, Left how
	// many fresh ones it may still show after Code.
	Spent, Left int
}

// String says it for a person, naming the device: `a device that gave
// no name, a35b3ba6 GNBS-... from 10.85.0.4 tried a wrong code; this code
// is spent`.
func (c CodeSpent) String() string {
	by := c.By.String()
	if c.By.Name != "" {
		by = "a device " + by
	}
	return fmt.Sprintf("%s %s; this code is spent", by, c.Why)
}

// dstate is the serving goroutine's state.
type dstate struct {
	// shortCode is the code shown now (its digits); codes how many this
	// pairing has shown; codesGone that it shows no more (MaxCodes).
	shortCode string
	codes     int
	codesGone bool
	failures  int
	burnt     bool
	used      bool
	codeUsed  bool
	// codeTaker is the device that took the code.
	codeTaker curve.PublicKey
	final     error // expired or burnt, once reported
	pending   *pending
	code      *codeSession
	// tried is every device (CURVE key) that tried this window's token
	// or code, first comer first: more than one is an exposure
	// (spec/pairing.md, "Exposure").
	tried     []Attempt
	declined  int       // candidates our user did not pick (exposed)
	moreTried int       // devices beyond maxTried, counted only
	qrs       []*qrCand // proven QR scanners waiting for our user
	q         *question // our user's question, when one is up
	qseq      int       // numbers the questions
	order     int       // numbers the candidates as they prove the secret
}

// qrCand is a QR scanner that proved the token's secret and waits for
// our user's decision.
type qrCand struct {
	identity []byte
	res      Result
	last     [][]byte // QR-CONFIRM, sent once our user said yes
	order    int
}

// question is our user's question (Confirm) about one candidate.
type question struct {
	seq    int
	code   *codeSession // the candidate asked about: a short-code session
	qr     *qrCand      // or a QR scanner
	others int          // how many other devices the question named
	cancel context.CancelFunc
}

// pending is a success waiting for the scanner's BYE.
type pending struct {
	identity []byte
	res      Result
	linger   *time.Timer
}

// codeSession is the one short-code exchange a code allows.
type codeSession struct {
	identity []byte
	peer     curve.PublicKey
	addr     string
	keys     cpaceKeys
	// proveBy runs from CODE-B until CODE-C: a taker who does not prove
	// the code within Options.Timeout has burnt it (codeAbandoned).
	proveBy *time.Timer
	// After CODE-C: both sides' users compare the number at once.
	res       *Result
	order     int
	cancel    context.CancelFunc // stops our Confirm about it
	localYes  bool               // our Confirm said yes
	yesOthers int                // how many other devices it named then
	peerYes   bool               // CODE-YES arrived
}

// confirmVerdict is our user's answer to question seq.
type confirmVerdict struct {
	seq int
	err error
}

type inbound struct {
	m      zmtp.Message
	advert bool
	err    error
}

// NewDisplayer starts listening (a CURVE ROUTER under the identity's key,
// and a plaintext key advert for the short code) and returns the token to
// show. Close it when done.
func NewDisplayer(opts Options) (*Displayer, Token, error) {
	opts = opts.withDefaults()
	if opts.Identity == nil {
		return nil, Token{}, ErrNoIdentity
	}
	pub, sec := opts.Identity.CurveKeyPair()
	defer sec.Wipe()
	now := opts.Now()
	binding, err := trust.NewBinding(opts.Identity.Signer(), pub, now)
	if err != nil {
		return nil, Token{}, fmt.Errorf("pairing: binding: %w", err)
	}
	listen, hints, iface, err := listenPlan(opts)
	if err != nil {
		return nil, Token{}, err
	}
	router, err := zmtp.ListenRouter("tcp", listen, zmtp.Options{
		Mechanism:  zmtp.CurveServer(zmtp.CurveServerConfig{Public: pub, Secret: sec}),
		MaxMsgSize: maxMsgSize,
		Logger:     opts.Logger,
	})
	if err != nil {
		return nil, Token{}, fmt.Errorf("pairing: listen on %s: %w", listen, err)
	}
	d := &Displayer{opts: opts, key: pub, binding: binding, router: router, iface: iface, verdict: make(chan confirmVerdict)}
	d.outcome.done = make(chan struct{})
	if !opts.DisableCode {
		addr := opts.CodeListen
		if addr == "" {
			host, _, _ := net.SplitHostPort(listen)
			addr = net.JoinHostPort(host, "0")
		}
		d.advert, err = zmtp.ListenRouter("tcp", addr, zmtp.Options{MaxMsgSize: maxMsgSize, Logger: opts.Logger})
		if err != nil {
			router.Close()
			return nil, Token{}, fmt.Errorf("pairing: listen for the short code on %s: %w", addr, err)
		}
	}
	port := uint16(router.Addr().(*net.TCPAddr).Port)
	for i, h := range hints {
		hints[i] = netip.AddrPortFrom(h.Addr(), port)
	}
	if len(opts.Hints) > 0 {
		hints = opts.Hints
	}
	if len(hints) == 0 {
		hints = hintsFor(router.Addr())
	}
	d.tok, err = newToken(opts.Rand, pub, now.Add(opts.TTL), hints)
	if err != nil {
		d.closeSockets()
		return nil, Token{}, err
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	if d.advert != nil && !opts.DisableDiscovery {
		// Without the announcement the token and the code still work
		// (the joiner needs the code endpoint): a program that holds the
		// port must not stop all pairing.
		if err := d.announce(); err != nil {
			opts.Logger.Warn("pairing: not announcing the short code on the network; the joiner needs the code endpoint", "endpoint", d.CodeAddr(), "err", err)
		}
	}
	d.wg.Add(1)
	go d.serve()
	return d, d.tok, nil
}

// listenPlan returns where the displayer listens, the hints to put in the
// token (ports to be filled in) and a description of their interface. By
// default it listens on all addresses, as a node does, and the hints are
// the addresses of the beacon interface.
func listenPlan(o Options) (listen string, hints []netip.AddrPort, iface string, err error) {
	if o.Listen != "" {
		return o.Listen, nil, "", nil
	}
	if o.Loopback {
		lo := netip.AddrFrom4([4]byte{127, 0, 0, 1})
		return netip.AddrPortFrom(lo, 0).String(), []netip.AddrPort{netip.AddrPortFrom(lo, 0)}, "lo (loopback)", nil
	}
	choices, err := beacon.Choose(o.Interface)
	if err != nil {
		return "", nil, "", fmt.Errorf("pairing: choosing the interface to pair on: %w", err)
	}
	var descs []string
	for _, c := range choices {
		descs = append(descs, c.String())
	}
	return ":0", hintsFromChoices(choices), strings.Join(descs, "; "), nil
}

// hintsFromChoices returns the interfaces' addresses (port 0), each once,
// IPv4 first across all interfaces (most joiners reach those), at most
// MaxHints: the cap comes after the sort, so that one interface's many
// IPv6 addresses do not push another's IPv4 address out.
func hintsFromChoices(choices []beacon.Choice) []netip.AddrPort {
	var hints []netip.AddrPort
	seen := map[netip.Addr]bool{}
	for _, c := range choices {
		for _, a := range c.Addrs {
			if !seen[a] {
				seen[a] = true
				hints = append(hints, netip.AddrPortFrom(a, 0))
			}
		}
	}
	slices.SortStableFunc(hints, func(a, b netip.AddrPort) int {
		return cmp.Compare(boolInt(!a.Addr().Is4()), boolInt(!b.Addr().Is4()))
	})
	return hints[:min(len(hints), MaxHints)]
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// announce starts broadcasting the short-code session on the beacon
// interface (spec/pairing.md, "Discovery").
func (d *Displayer) announce() error {
	a, err := d.announcement(d.tok.code)
	if err != nil {
		return err
	}
	cfg := d.opts.beaconConfig()
	cfg.Queue = 1 // we only send: whatever arrives is never read
	svc, err := beacon.New(cfg)
	if err == nil {
		err = svc.Start(d.ctx)
	}
	if err != nil {
		return fmt.Errorf("pairing: announcing the short code: %w", err)
	}
	svc.Publish(a.appendMarshal(nil))
	d.ann = svc
	if d.iface == "" {
		d.iface = svc.Interface()
	}
	return nil
}

// announcement is the announcement of code, with a fresh salt.
func (d *Displayer) announcement(code string) (announcement, error) {
	return newAnnouncement(d.opts.Rand, code, uint16(d.advert.Addr().(*net.TCPAddr).Port))
}

// Interface describes where the displayer's hints and announcements are:
// the beacon interface chosen, its address and why it was chosen; empty
// when Listen was given and discovery is off.
func (d *Displayer) Interface() string { return d.iface }

// hintsFor returns the endpoints to put in a token for a listener: its
// own address, or this host's interface addresses when it listens on all.
func hintsFor(a net.Addr) []netip.AddrPort {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return nil
	}
	ap := ta.AddrPort()
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if !ap.Addr().IsUnspecified() {
		return []netip.AddrPort{ap}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var v4, v6 []netip.AddrPort
	for _, ia := range addrs {
		pfx, err := netip.ParsePrefix(ia.String())
		if err != nil {
			continue
		}
		ip := pfx.Addr().Unmap()
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsMulticast() {
			continue
		}
		if ip.Is4() {
			v4 = append(v4, netip.AddrPortFrom(ip, ap.Port()))
		} else {
			v6 = append(v6, netip.AddrPortFrom(ip, ap.Port()))
		}
	}
	hints := append(v4, v6...)
	if len(hints) > MaxHints {
		hints = hints[:MaxHints]
	}
	return hints
}

// Token returns the token shown. Its ShortCode is the pairing's first
// code; the fresh codes shown after a failed attempt come through
// Options.OnCode.
func (d *Displayer) Token() Token { return d.tok }

// Addr returns the CURVE endpoint.
func (d *Displayer) Addr() net.Addr { return d.router.Addr() }

// CodeAddr returns the endpoint a short-code scanner connects to first
// (JoinCode's endpoint), or "" when the short code is off. When the advert
// listens on all interfaces, the host is the token's first hint.
func (d *Displayer) CodeAddr() string {
	if d.advert == nil {
		return ""
	}
	ta, ok := d.advert.Addr().(*net.TCPAddr)
	if !ok {
		return d.advert.Addr().String()
	}
	ap := ta.AddrPort()
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if ap.Addr().IsUnspecified() && len(d.tok.Hints) > 0 {
		ap = netip.AddrPortFrom(d.tok.Hints[0].Addr(), ap.Port())
	}
	return ap.String()
}

// Wait returns the outcome: the first successful pairing, or an error
// wrapping ErrExpired, ErrBurnt, ErrRefused or ErrClosed (with
// EndOnCodeFailure also ErrWrongCode, or the scanner's reason), or ctx's
// error.
// It may be called more than once and from several goroutines.
func (d *Displayer) Wait(ctx context.Context) (Result, error) {
	select {
	case <-d.outcome.done:
		return d.outcome.res, d.outcome.err
	case <-ctx.Done():
		return Result{}, fmt.Errorf("pairing: waiting for a scanner: %w", ctx.Err())
	}
}

// Close stops listening. A scanner in the middle of a short-code
// exchange is told (at most Options.Linger). It is idempotent and returns
// when the Displayer's goroutines have exited, our Confirm included; Wait
// then returns ErrClosed unless the outcome was known.
func (d *Displayer) Close() error {
	d.closeOnce.Do(func() {
		d.cancel()
		d.wg.Wait() // the serving goroutine says its last word first
		d.closeSockets()
		d.finish(Result{}, ErrClosed)
	})
	return nil
}

func (d *Displayer) closeSockets() {
	d.router.Close()
	if d.advert != nil {
		d.advert.Close()
	}
	if d.ann != nil {
		d.ann.Close()
	}
}

// silence stops announcing: the code is used or the outcome known.
func (d *Displayer) silence() {
	if d.ann != nil {
		d.ann.Silence()
	}
}

func (d *Displayer) finish(res Result, err error) {
	d.silence()
	d.outcome.once.Do(func() {
		d.outcome.res, d.outcome.err = res, err
		close(d.outcome.done)
	})
}

func (d *Displayer) forward(r *zmtp.Router, advert bool, in chan<- inbound) {
	defer d.wg.Done()
	for {
		m, err := r.Recv(d.ctx)
		select {
		case in <- inbound{m: m, advert: advert, err: err}:
		case <-d.ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

func (d *Displayer) serve() {
	defer d.wg.Done()
	in := make(chan inbound)
	d.wg.Add(1)
	go d.forward(d.router, false, in)
	if d.advert != nil {
		d.wg.Add(1)
		go d.forward(d.advert, true, in)
	}
	st := dstate{shortCode: d.tok.code, codes: 1}
	exp := time.NewTimer(d.untilExpiry())
	defer exp.Stop()
	defer func() {
		if st.code != nil {
			st.code.stop()
		}
	}()
	for {
		var lingerC, proveC <-chan time.Time
		if st.pending != nil {
			lingerC = st.pending.linger.C
		}
		if st.code != nil && st.code.proveBy != nil {
			proveC = st.code.proveBy.C
		}
		select {
		case <-d.ctx.Done():
			d.closing(&st)
			return
		case <-exp.C:
			if d.expired() {
				d.fail(&st, fmt.Errorf("pairing: token %x: %w", d.tok.ID, ErrExpired))
			} else {
				exp.Reset(d.untilExpiry())
			}
		case <-lingerC:
			d.succeed(&st)
		case <-proveC:
			d.codeAbandoned(&st)
		case v := <-d.verdict:
			d.onVerdict(&st, v)
		case ib := <-in:
			if ib.err != nil {
				if !errors.Is(ib.err, zmtp.ErrClosed) && d.ctx.Err() == nil {
					d.opts.Logger.Warn("pairing: receive", "err", ib.err)
				}
				if d.ctx.Err() != nil { // Close's cancel ended the receive: say so
					d.closing(&st)
				}
				return
			}
			d.handle(&st, ib)
		}
	}
}

// closing tells a scanner in the middle of a short-code exchange that the
// displayer closed.
func (d *Displayer) closing(st *dstate) {
	err := fmt.Errorf("%w: %w", ErrClosed, ErrRefused)
	if cs := st.code; cs != nil {
		st.code = nil
		cs.stop()
		d.replyLast(context.Background(), cs.identity, errMsg(err))
	}
	for _, c := range st.qrs {
		d.replyLast(context.Background(), c.identity, errMsg(err))
	}
	st.qrs = nil
}

func (d *Displayer) untilExpiry() time.Duration {
	return max(d.tok.Expires.Sub(d.opts.Now()), time.Millisecond)
}

func (d *Displayer) expired() bool { return !d.opts.Now().Before(d.tok.Expires) }

// fail ends the pairing with an error (expired, burnt) unless it succeeded.
func (d *Displayer) fail(st *dstate, err error) {
	if st.final == nil && !st.used {
		st.final = err
		if st.q != nil { // our user's question: the outcome is known
			st.q.cancel()
			st.q = nil
		}
		d.endCode(st, err)
		d.endQRs(st, nil, err)
		d.finish(Result{}, err)
	}
}

// stop cancels the session's timer and our user's question.
func (cs *codeSession) stop() {
	if cs.proveBy != nil {
		cs.proveBy.Stop()
	}
	if cs.cancel != nil {
		cs.cancel()
	}
}

// endCode ends a short-code exchange in progress because the pairing
// ended or the token was used by another scanner: our user's question is
// cancelled and the scanner told at once, so that neither waits for a
// comparison that can no longer complete.
func (d *Displayer) endCode(st *dstate, err error) {
	cs := st.code
	if cs == nil {
		return
	}
	st.code = nil
	cs.stop()
	d.replyFinal(cs.identity, errMsg(err))
}

// codeAbandoned: whoever took the code did not prove it in time. The code
// is burnt (one attempt per code); this is reported like a wrong code.
func (d *Displayer) codeAbandoned(st *dstate) {
	cs := st.code
	err := fmt.Errorf("pairing: short code taken by %s, who did not prove it within %s: %w", trust.Fingerprint(cs.peer), d.opts.ProveTimeout, ErrWrongCode)
	d.opts.Logger.Warn("pairing: short code abandoned; the code is burnt", "err", err)
	d.endCode(st, err)
	d.codeFailed(st, err, cs.peer, fmt.Sprintf("took the code and did not prove it within %s", d.opts.ProveTimeout))
}

func (d *Displayer) succeed(st *dstate) {
	if st.pending == nil {
		return
	}
	st.pending.linger.Stop()
	d.finish(st.pending.res, nil)
	st.pending = nil
}

func (d *Displayer) reply(to []byte, advert bool, frames [][]byte) {
	r := d.router
	if advert {
		r = d.advert
	}
	if err := r.Send(to, frames...); err != nil {
		d.opts.Logger.Info("pairing: reply", "err", err)
	}
}

// replyFinal sends the last word to a scanner and waits (at most
// Options.Linger) until it is written out, before the outcome is known:
// the owner may Close as soon as Wait returns, and a refusal dropped then
// would leave the scanner waiting for its timeout.
func (d *Displayer) replyFinal(to []byte, frames [][]byte) {
	d.replyLast(d.ctx, to, frames)
}

// replyLast is replyFinal under ctx. The last word is written even when
// ctx has ended (Close cancelled it: that is often why it is said), at
// most for Options.Linger.
func (d *Displayer) replyLast(ctx context.Context, to []byte, frames [][]byte) {
	d.reply(to, false, frames)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.opts.Linger)
	defer cancel()
	if err := d.router.Flush(fctx, to); err != nil {
		d.opts.Logger.Info("pairing: final reply", "err", err)
	}
}

func (d *Displayer) handle(st *dstate, ib inbound) {
	m := ib.m
	id := m.Peer.Identity
	cmd, f, err := parseMsg(m.Frames)
	if err != nil {
		d.opts.Logger.Info("pairing: bad message", "from", m.Peer.RemoteAddr, "err", err)
		d.reply(id, ib.advert, errMsg(err))
		return
	}
	if ib.advert {
		if cmd != cmdWho {
			d.reply(id, true, errMsg(fmt.Errorf("pairing: %s on the advert socket: %w", cmd, ErrProtocol)))
			return
		}
		port := binary.BigEndian.AppendUint16(nil, uint16(d.router.Addr().(*net.TCPAddr).Port))
		d.reply(id, true, newMsg(cmdMe, d.key.Bytes(), port))
		return
	}
	peerKey, err := curve.NewPublicKey(m.Peer.PublicKey)
	if err != nil {
		d.reply(id, false, errMsg(fmt.Errorf("pairing: peer without a CURVE key: %w", ErrProtocol)))
		return
	}
	if cmd == cmdBye {
		if st.pending != nil && bytes.Equal(st.pending.identity, id) {
			d.reply(id, false, newMsg(cmdBye))
			// Write the echo out before the outcome is known: the owner
			// may Close as soon as Wait returns, and a dropped echo would
			// keep the scanner waiting for Options.Linger.
			fctx, cancel := context.WithTimeout(d.ctx, d.opts.Linger)
			if err := d.router.Flush(fctx, id); err != nil {
				d.opts.Logger.Info("pairing: BYE echo", "err", err)
			}
			cancel()
			d.succeed(st)
		}
		return
	}
	if cmd == cmdErr && st.pending != nil && bytes.Equal(st.pending.identity, id) {
		// The scanner could not record us after all (its own store
		// refused): no success, though we recorded it already.
		st.pending.linger.Stop()
		st.pending = nil
		err := fmt.Errorf("pairing: scanner %s did not record us (our record of it stays): %w", trust.Fingerprint(peerKey), remoteErr(f))
		d.opts.Logger.Warn("pairing: the scanner refused at the end", "err", err)
		d.finish(Result{}, err)
		return
	}
	if cmd == cmdErr {
		for _, c := range st.qrs {
			if bytes.Equal(c.identity, id) {
				// A QR scanner waiting for our user went away: it is no
				// longer a candidate (it would be recorded but not
				// record us).
				d.opts.Logger.Info("pairing: a QR scanner gave up", "peer", trust.Fingerprint(peerKey), "err", remoteErr(f))
				d.removeQR(st, c)
				if st.q != nil && st.q.qr == c {
					st.q.cancel()
					st.q = nil
				}
				d.reconsider(st)
				return
			}
		}
	}
	if cmd == cmdErr || cmd == cmdCodeYes {
		d.onVerdictMsg(st, id, peerKey, cmd, f)
		return
	}
	// The state refusals, in order of precedence.
	switch {
	case st.used:
		d.reply(id, false, errMsg(fmt.Errorf("pairing: token %x: %w", d.tok.ID, ErrUsed)))
		return
	case st.final != nil:
		d.reply(id, false, errMsg(st.final))
		return
	case d.expired():
		err := fmt.Errorf("pairing: token %x: %w", d.tok.ID, ErrExpired)
		d.reply(id, false, errMsg(err))
		d.fail(st, err)
		return
	}
	log := d.opts.Logger.With("peer", trust.Fingerprint(peerKey), "addr", m.Peer.RemoteAddr)
	addr := ""
	if m.Peer.RemoteAddr != nil {
		addr = m.Peer.RemoteAddr.String()
	}
	switch cmd {
	case cmdQRProof:
		d.onProof(st, id, peerKey, addr, f, log)
	case cmdCodeA:
		d.onCodeA(st, id, peerKey, addr, f, log)
	case cmdCodeC:
		d.onCodeC(st, id, peerKey, f, log)
	default:
		d.reply(id, false, errMsg(fmt.Errorf("pairing: unexpected %s: %w", cmd, ErrProtocol)))
	}
}

// attemptFailed counts a wrong proof and burns the token at the limit.
func (d *Displayer) attemptFailed(st *dstate, id []byte, err error, log *slog.Logger) {
	st.failures++
	log.Warn("pairing: failed attempt", "attempt", st.failures, "max", d.opts.MaxAttempts, "err", err)
	if st.failures >= d.opts.MaxAttempts {
		st.burnt = true
		berr := fmt.Errorf("pairing: token %x: %d failed attempts: %w", d.tok.ID, st.failures, ErrBurnt)
		d.replyFinal(id, errMsg(berr))
		d.fail(st, berr)
		return
	}
	d.reply(id, false, errMsg(err))
}

func (d *Displayer) onProof(st *dstate, id []byte, peerKey curve.PublicKey, addr string, f [][]byte, log *slog.Logger) {
	tokID, proof, binding, name := f[0], f[1], f[2], f[3]
	if !hmac.Equal(tokID, d.tok.ID[:]) {
		d.attemptFailed(st, id, fmt.Errorf("pairing: unknown token id %x: %w", truncate(string(tokID), IDSize), ErrBadToken), log)
		return
	}
	want := qrProof(d.tok.secret[:], "scanner", d.key, peerKey, d.tok.ID[:])
	if !hmac.Equal(proof, want) {
		d.attemptFailed(st, id, fmt.Errorf("pairing: from %s: %w", trust.Fingerprint(peerKey), ErrBadProof), log)
		return
	}
	info, err := checkPeerInfo(binding, name, peerKey)
	if err != nil {
		d.reply(id, false, errMsg(err))
		return
	}
	if err := screen(d.opts, peerKey); err != nil {
		// A revoked key is refused before anyone is asked.
		d.replyFinal(id, errMsg(err))
		d.fail(st, err)
		return
	}
	res := Result{Method: "qr", PeerKey: peerKey, PeerUUID: zre.UUIDFromKey(peerKey), PeerName: info.name, PeerSigningKey: info.signingKey, PeerAddr: addr, AsDisplayer: true, At: d.opts.Now()}
	if err := nameCheck(d.opts, &res); err != nil {
		d.replyFinal(id, errMsg(err))
		d.fail(st, err)
		return
	}
	last := newMsg(cmdQRConfirm, qrProof(d.tok.secret[:], "displayer", d.key, peerKey, d.tok.ID[:]), d.binding, []byte(d.opts.Identity.Name))
	if !d.noteAttempt(st, res.Peer(), log) {
		d.reply(id, false, errMsg(fmt.Errorf("pairing: more than %d devices tried this token: %w", maxTried, ErrExposed)))
		return
	}
	for _, c := range st.qrs {
		if c.res.PeerKey == peerKey { // the same device again (a second connection): the newest wins
			c.identity, c.res, c.last = bytes.Clone(id), res, last
			return
		}
	}
	st.order++
	st.qrs = append(st.qrs, &qrCand{identity: bytes.Clone(id), res: res, last: last, order: st.order})
	d.reconsider(st)
}

// noteAttempt adds a device to those that tried this window, or fills in
// the name it gave; a second device is an exposure (spec/pairing.md,
// "Exposure"), which the caller's reconsider acts on.
// At most maxTried devices are kept (a stranger who holds the token can
// prove it under any number of keys): the others are refused by the
// caller (noteAttempt returns false) and counted only.
func (d *Displayer) noteAttempt(st *dstate, a Attempt, log *slog.Logger) bool {
	for i := range st.tried {
		if st.tried[i].Key == a.Key {
			if a.Name != "" {
				st.tried[i].Name = a.Name
			}
			return true
		}
	}
	if len(st.tried) >= maxTried {
		st.moreTried++
		return false
	}
	if l, ok := d.opts.Recorder.(looker); ok {
		if r, found, err := l.Lookup(a.Key); err == nil && found && r.Name != "" {
			a.Known = &r
		}
	}
	st.tried = append(st.tried, a)
	if len(st.tried) > 1 {
		log.Info("pairing: another device tried this code or token: it is exposed", "devices", describeAll(st.tried))
	}
	return true
}

// maxTried bounds the devices an exposed pairing keeps and names.
const maxTried = 8

// othersThan is every device that tried this window but key.
func (st *dstate) othersThan(key curve.PublicKey) []Attempt {
	var o []Attempt
	for _, a := range st.tried {
		if a.Key != key {
			o = append(o, a)
		}
	}
	return o
}

// exposedErr is the outcome of an exposed pairing that nobody chose.
func (d *Displayer) exposedErr(st *dstate, why string) error {
	n, all := len(st.tried)+st.moreTried, describeAll(st.tried)
	if st.moreTried > 0 {
		all += fmt.Sprintf(" and %d more", st.moreTried)
	}
	return fmt.Errorf("pairing: %d devices tried this code or token: %s; someone else may have seen it; %s: %w", n, all, why, ErrExposed)
}

// reconsider asks our user about the next candidate, when none is being
// asked and the pairing is open. Not exposed: the one candidate. Exposed:
// the latest proven one first (the device just used is most often the
// one in the user's hand), with the others named; a question asked before
// a device came is asked again naming it. Exposed with nobody to ask
// (Confirm nil) or with every candidate declined and no exchange left
// that could still prove the code: the pairing ends with ErrExposed.
func (d *Displayer) reconsider(st *dstate) {
	if st.used || st.final != nil {
		return
	}
	exposed := len(st.tried) > 1
	if exposed && d.opts.Confirm == nil {
		d.fail(st, d.exposedErr(st, "nobody is asked to pick one, so none is paired"))
		return
	}
	if q := st.q; q != nil {
		if q.others == len(st.tried)-1 {
			return
		}
		// A device came since the question: drop it (a late answer is
		// not taken) and ask again, naming the newcomer.
		q.cancel()
		st.q = nil
		if q.code != nil {
			q.code.cancel = nil
		}
	}
	if cs := st.code; cs != nil && cs.localYes && cs.yesOthers != len(st.tried)-1 {
		cs.localYes = false // said before a device came: ask again
	}
	// The candidate to ask about: the latest proven.
	var qc *qrCand
	var cc *codeSession
	best := 0
	for _, c := range st.qrs {
		if c.order > best {
			qc, cc, best = c, nil, c.order
		}
	}
	if cs := st.code; cs != nil && cs.res != nil && !cs.localYes && cs.order > best {
		qc, cc = nil, cs
	}
	switch {
	case qc == nil && cc == nil:
		if exposed && st.code == nil && len(st.qrs) == 0 && st.declined > 0 {
			d.fail(st, d.exposedErr(st, "none was picked"))
		}
		return
	case d.opts.Confirm == nil: // not exposed
		if cc != nil {
			cc.localYes, cc.yesOthers = true, 0
			d.maybeComplete(st)
		} else {
			d.completeQR(st, qc)
		}
		return
	}
	res := Result{}
	if cc != nil {
		res = *cc.res
	} else {
		res = qc.res
	}
	res.Others = st.othersThan(res.PeerKey)
	st.qseq++
	cctx, cancel := context.WithCancel(d.ctx)
	st.q = &question{seq: st.qseq, code: cc, qr: qc, others: len(res.Others), cancel: cancel}
	if cc != nil {
		cc.cancel = cancel
	}
	confirm, seq := d.opts.Confirm, st.qseq
	d.wg.Add(1) // Close waits for our user's question too
	go func() {
		defer d.wg.Done()
		err := confirm(cctx, res)
		select {
		case d.verdict <- confirmVerdict{seq: seq, err: err}:
		case <-d.ctx.Done():
		}
	}()
}

// completeQR pairs with a QR scanner our user chose (or, without
// Confirm, the only one).
func (d *Displayer) completeQR(st *dstate, c *qrCand) {
	d.removeQR(st, c)
	d.complete(st, c.identity, c.res, c.last, false)
}

func (d *Displayer) removeQR(st *dstate, c *qrCand) {
	st.qrs = slices.DeleteFunc(st.qrs, func(x *qrCand) bool { return x == c })
}

// endQRs tells every waiting QR scanner but keep why it is not paired.
func (d *Displayer) endQRs(st *dstate, keep *qrCand, err error) {
	for _, c := range st.qrs {
		if c != keep {
			d.replyFinal(c.identity, errMsg(err))
		}
	}
	st.qrs = slices.DeleteFunc(st.qrs, func(x *qrCand) bool { return x != keep })
}

// complete accepts a proven peer: Confirm, record, then the last message
// and a linger for the scanner's BYE.
func (d *Displayer) complete(st *dstate, id []byte, res Result, last [][]byte, ask bool) {
	st.used = true
	if st.q != nil {
		st.q.cancel()
		st.q = nil
	}
	used := fmt.Errorf("pairing: token %x: %w: the showing device's user chose another device", d.tok.ID, ErrUsed)
	d.endCode(st, used) // another scanner's, if any
	d.endQRs(st, nil, used)
	o := d.opts
	if !ask {
		o.Confirm = nil
	}
	if err := accept(d.ctx, o, &res); err != nil {
		d.replyFinal(id, errMsg(err))
		d.finish(Result{}, err)
		return
	}
	d.reply(id, false, last)
	st.pending = &pending{identity: bytes.Clone(id), res: res, linger: time.NewTimer(d.opts.Linger)}
}

func (d *Displayer) onCodeA(st *dstate, id []byte, peerKey curve.PublicKey, addr string, f [][]byte, log *slog.Logger) {
	if d.advert == nil {
		d.reply(id, false, errMsg(fmt.Errorf("pairing: the short code is off: %w", ErrRefused)))
		return
	}
	sid, ya := f[0], f[1]
	if len(sid) != cpaceSIDSize || len(ya) != cpaceElemSize {
		d.reply(id, false, errMsg(fmt.Errorf("pairing: CODE-A sizes %d/%d: %w", len(sid), len(ya), ErrProtocol)))
		return
	}
	known := d.noteAttempt(st, Attempt{Method: "code", Key: peerKey, UUID: zre.UUIDFromKey(peerKey), Addr: addr}, log)
	if st.codesGone && known {
		// Every code was spent: whoever types one now is told that the
		// QR code still pairs; it tried, so our user hears of it
		// (exposure).
		d.reply(id, false, errMsg(fmt.Errorf("pairing: %w: %s", ErrCodeUsed, codesGoneText)))
		d.reconsider(st)
		return
	}
	if st.codeUsed || !known {
		// Another device (or this one before) took the code; whoever
		// comes late is told so, and our user is told of the exposure.
		if st.codeTaker == peerKey {
			d.reply(id, false, errMsg(fmt.Errorf("pairing: %w by this device before (one attempt per code)", ErrCodeUsed)))
		} else {
			d.reply(id, false, errMsg(fmt.Errorf("pairing: %w by another device (one attempt per code; the showing device's screen says which)", ErrCodeUsed)))
		}
		d.reconsider(st)
		return
	}
	st.codeUsed, st.codeTaker = true, peerKey // one attempt per code, whatever happens next
	// Announcing goes on: a device that comes late must find us, to be
	// told that the code was taken and to tell our user (exposure).
	log.Info("pairing: short-code attempt")
	// From here on a failure has used the code: say so, as for a wrong code.
	burnt := func(err error) {
		d.replyFinal(id, errMsg(err))
		err = fmt.Errorf("pairing: short code taken by %s, exchange failed (%w): %w", trust.Fingerprint(peerKey), err, ErrWrongCode)
		log.Warn("pairing: short code failed; the code is burnt", "err", err)
		d.codeFailed(st, err, peerKey, "sent a short-code attempt that does not compute")
	}
	p, err := newCPaceParty(d.opts.Rand, []byte(st.shortCode), cpaceCI(d.key.Bytes(), peerKey.Bytes()), sid)
	if err != nil {
		burnt(err)
		return
	}
	K, err := p.sharedK(ya)
	if err != nil {
		burnt(err)
		return
	}
	keys, err := deriveKeys(sid, K, ya, p.share)
	if err != nil {
		burnt(err)
		return
	}
	st.code = &codeSession{identity: bytes.Clone(id), peer: peerKey, addr: addr, keys: keys, proveBy: time.NewTimer(d.opts.ProveTimeout)}
	d.reply(id, false, newMsg(cmdCodeB, p.share, keys.tagB, d.binding, []byte(d.opts.Identity.Name)))
}

func (d *Displayer) onCodeC(st *dstate, id []byte, peerKey curve.PublicKey, f [][]byte, log *slog.Logger) {
	cs := st.code
	if cs == nil || !bytes.Equal(cs.identity, id) || cs.peer != peerKey {
		d.reply(id, false, errMsg(fmt.Errorf("pairing: CODE-C without CODE-A: %w", ErrProtocol)))
		return
	}
	if cs.res != nil {
		d.reply(id, false, errMsg(fmt.Errorf("pairing: second CODE-C: %w", ErrProtocol)))
		return
	}
	cs.proveBy.Stop()
	cs.proveBy = nil
	if !hmac.Equal(f[0], cs.keys.tagA) {
		st.code = nil
		err := fmt.Errorf("pairing: short code from %s: %w", trust.Fingerprint(peerKey), ErrWrongCode)
		log.Warn("pairing: short code failed; the code is burnt", "err", err)
		d.replyFinal(id, errMsg(err))
		d.codeFailed(st, err, peerKey, "tried a wrong code")
		return
	}
	info, err := checkPeerInfo(f[1], f[2], peerKey)
	if err != nil {
		st.code = nil
		d.replyFinal(id, errMsg(err))
		d.codeFailed(st, err, peerKey, "proved the code but sent no valid key binding")
		return
	}
	if err := screen(d.opts, peerKey); err != nil {
		// As accept would refuse it at the end (complete), before
		// either user is asked.
		st.code, st.used = nil, true
		d.replyFinal(id, errMsg(err))
		d.finish(Result{}, err)
		return
	}
	res := Result{Method: "code", PeerKey: peerKey, PeerUUID: zre.UUIDFromKey(peerKey), PeerName: info.name, PeerSigningKey: info.signingKey, Comparison: cs.keys.number, PeerAddr: cs.addr, AsDisplayer: true, At: d.opts.Now()}
	if err := nameCheck(d.opts, &res); err != nil {
		st.code, st.used = nil, true
		d.replyFinal(id, errMsg(err))
		d.finish(Result{}, err)
		return
	}
	cs.res = &res
	st.order++
	cs.order = st.order
	d.noteAttempt(st, res.Peer(), log) // its name, now known
	// The scanner shows the number as soon as it has sent CODE-C: ask our
	// user now, off the serving goroutine, so that a refusal from the
	// other side can stop the question.
	d.reconsider(st)
}

// onVerdict takes our user's answer to question v.seq.
func (d *Displayer) onVerdict(st *dstate, v confirmVerdict) {
	q := st.q
	if q == nil || q.seq != v.seq {
		return // a question dropped (a device came, the session ended)
	}
	if v.err != nil && d.ctx.Err() != nil {
		// Close cancelled our user's question; the ctx.Done case tells
		// the scanner that the displayer closed, not that it refused.
		return
	}
	st.q = nil
	q.cancel()
	cs := q.code
	if cs != nil {
		cs.cancel = nil
		if st.code != cs || cs.res == nil {
			d.reconsider(st) // the session ended first
			return
		}
	}
	if q.qr != nil && !slices.Contains(st.qrs, q.qr) {
		d.reconsider(st)
		return
	}
	if v.err == nil {
		if cs != nil {
			cs.localYes, cs.yesOthers = true, q.others
			d.maybeComplete(st)
		} else {
			d.completeQR(st, q.qr)
		}
		return
	}
	err := fmt.Errorf("pairing: not confirmed: %v: %w", v.err, ErrRefused)
	id := q.identity()
	if cs != nil {
		st.code = nil
		cs.stop()
	} else {
		d.removeQR(st, q.qr)
	}
	if len(st.tried) < 2 {
		// Not exposed: our user's no ends the pairing.
		d.replyFinal(id, errMsg(err))
		d.fail(st, err)
		return
	}
	// Exposed: this one is not the device our user expects; ask about
	// the next, or end when none is left.
	st.declined++
	d.replyFinal(id, errMsg(fmt.Errorf("pairing: %d devices tried this code or token, and the showing device's user did not pick this one: %w", len(st.tried), ErrExposed)))
	d.reconsider(st)
}

// identity is the connection of the candidate asked about.
func (q *question) identity() []byte {
	if q.code != nil {
		return q.code.identity
	}
	return q.qr.identity
}

// onVerdictMsg takes the scanner's answer: CODE-YES, or ERR (its user
// refused, or it found the code wrong).
func (d *Displayer) onVerdictMsg(st *dstate, id []byte, peerKey curve.PublicKey, cmd string, f [][]byte) {
	cs := st.code
	if cs == nil || !bytes.Equal(cs.identity, id) || cs.peer != peerKey {
		if cmd == cmdErr {
			return // nothing to answer an ERR with
		}
		d.reply(id, false, errMsg(fmt.Errorf("pairing: %s outside a short-code exchange: %w", cmd, ErrProtocol)))
		return
	}
	if cmd == cmdErr {
		cs.stop()
		st.code = nil
		err := remoteErr(f)
		d.opts.Logger.Warn("pairing: the scanner ended the short-code exchange", "peer", trust.Fingerprint(peerKey), "err", err)
		err = fmt.Errorf("pairing: scanner %s: %w", trust.Fingerprint(peerKey), err)
		if cs.res != nil && errors.Is(err, ErrRefused) {
			// A device that proved the code (CODE-C checked out), whose
			// user said no or gave up: a person ended it, as our own
			// user's no does. (Before CODE-C an ERR proves nothing: it
			// only spends the code.)
			d.fail(st, err)
			return
		}
		why := "ended the short-code exchange"
		if errors.Is(err, ErrWrongCode) {
			why = "tried a wrong code" // it found our key confirmation wrong: its code differs
		}
		d.codeFailed(st, err, peerKey, why)
		return
	}
	if cs.res == nil {
		d.reply(id, false, errMsg(fmt.Errorf("pairing: CODE-YES before CODE-C: %w", ErrProtocol)))
		return
	}
	cs.peerYes = true
	d.maybeComplete(st)
}

// codeFailed ends the pairing after a failed short-code exchange when
// Options.EndOnCodeFailure says so. Otherwise the code is spent (one
// attempt per code) and a fresh one is shown, with a new announcement,
// until Options.MaxCodes were shown; the QR token is not touched. by is
// the device that spent it, why how (for a person; Options.OnCode).
func (d *Displayer) codeFailed(st *dstate, err error, by curve.PublicKey, why string) {
	if d.opts.EndOnCodeFailure {
		d.fail(st, err)
		return
	}
	if st.used || st.final != nil {
		return
	}
	ev := CodeSpent{By: st.attemptOf(by), Why: why, Spent: st.codes}
	code := ""
	if st.codes < d.opts.MaxCodes {
		code, err = newShortCode(d.opts.Rand)
		if err != nil {
			d.opts.Logger.Warn("pairing: no fresh short code", "err", err)
		}
	}
	if code == "" {
		// The last code's announcement stays: whoever types it finds us
		// and is told at once that only the QR code pairs now.
		st.codesGone = true
	} else {
		st.shortCode, st.codes = code, st.codes+1
		st.codeUsed, st.codeTaker = false, curve.PublicKey{}
		ev.Code, ev.Endpoint, ev.Left = formatCode(code), d.CodeAddr(), d.opts.MaxCodes-st.codes
		if d.ann != nil {
			a, err := d.announcement(code)
			if err != nil {
				d.opts.Logger.Warn("pairing: not announcing the fresh short code", "err", err)
				d.silence()
			} else {
				d.ann.Publish(a.appendMarshal(nil))
			}
		}
	}
	d.opts.Logger.Info("pairing: short code spent", "by", ev.By.String(), "why", why, "fresh", ev.Code != "", "spent", ev.Spent)
	if d.opts.OnCode != nil {
		d.opts.OnCode(ev)
	}
}

// attemptOf is the device with key among those that tried, or one known
// only by its key.
func (st *dstate) attemptOf(key curve.PublicKey) Attempt {
	for _, a := range st.tried {
		if a.Key == key {
			return a
		}
	}
	return Attempt{Method: "code", Key: key, UUID: zre.UUIDFromKey(key)}
}

// maybeComplete records the scanner once both users have said yes.
func (d *Displayer) maybeComplete(st *dstate) {
	cs := st.code
	if !cs.localYes || !cs.peerYes {
		return
	}
	if st.used || st.final != nil { // endCode should have ended it; never record twice
		err := st.final
		if err == nil {
			err = fmt.Errorf("pairing: token %x: %w", d.tok.ID, ErrUsed)
		}
		d.endCode(st, err)
		return
	}
	st.code = nil
	d.complete(st, cs.identity, *cs.res, newMsg(cmdCodeOK), false) // both asked already
}

// looker is a Recorder that can look a key up (*trust.Store is one).
type looker interface {
	Lookup(key curve.PublicKey) (trust.Record, bool, error)
}

// screen refuses a key the Recorder holds as revoked, before anyone is
// asked to compare numbers: recording it would fail at the end anyway.
func screen(o Options, key curve.PublicKey) error {
	l, ok := o.Recorder.(looker)
	if !ok {
		return nil
	}
	if r, found, err := l.Lookup(key); err == nil && found && r.State == trust.StateRevoked {
		return fmt.Errorf("pairing: recording %s as verified: %w: %w", trust.Fingerprint(key), trust.ErrRevoked, ErrRefused)
	}
	return nil
}

// lister is a Recorder that can list its records (*trust.Store is one).
type lister interface {
	List() ([]trust.Record, error)
}

// nameHolder is the record of another key than key that holds name in
// the Recorder and that a person or a verified peer acted on: verified,
// introduced or revoked, in that order of preference (as the trust
// store's admission rule 4 picks it). Nil when there is none, when key's
// own record holds name with a state as strong (a device verified here
// pairing again is not flagged by an older, revoked namesake), or when
// the Recorder cannot list its records.
func nameHolder(o Options, key curve.PublicKey, name string) *trust.Record {
	l, ok := o.Recorder.(lister)
	if !ok || name == "" {
		return nil
	}
	rs, err := l.List()
	if err != nil {
		return nil
	}
	rank := map[trust.State]int{trust.StateVerified: 3, trust.StateIntroduced: 2, trust.StateRevoked: 1}
	var found *trust.Record
	own := 0
	for i := range rs {
		r := &rs[i]
		switch {
		case r.Name != name || rank[r.State] == 0:
		case r.Key == key:
			if r.State != trust.StateRevoked {
				own = rank[r.State]
			}
		case found == nil || rank[r.State] > rank[found.State]:
			found = r
		}
	}
	if found == nil || rank[found.State] <= own {
		return nil
	}
	return found
}

// DescribeNameHolder says, for a person, which device of this node holds
// the name a pairing peer presents (Result.NameHolder), e.g. "your
// verified phone1 is FAWY-FLPA-OCBC-GSIW (8b0744b8)" or "the phone1 you
// knew (FAWY-FLPA-OCBC-GSIW, 8b0744b8) was revoked: lost". The name is
// escaped when it is not printable.
func DescribeNameHolder(r trust.Record) string {
	name := quoteName(r.Name)
	id := r.UUID.String()[:8]
	if r.State == trust.StateRevoked {
		s := fmt.Sprintf("the %s you knew (%s, %s) was revoked", name, r.Fingerprint, id)
		if r.RevokeReason != "" {
			s += ": " + quoteName(r.RevokeReason)
		}
		return s
	}
	return fmt.Sprintf("your %s %s is %s (%s)", r.State, name, r.Fingerprint, id)
}

// nameCheck sets res.NameHolder. A peer that presents the name of
// another device known here is paired only when a person picks it
// (Confirm); without Confirm it is refused.
func nameCheck(o Options, res *Result) error {
	res.NameHolder = nameHolder(o, res.PeerKey, res.PeerName)
	if res.NameHolder == nil || o.Confirm != nil {
		return nil
	}
	return fmt.Errorf("pairing: %s %s calls itself %s, but %s: it is ANOTHER device, and nobody is asked to pick it: %w: %w",
		trust.Fingerprint(res.PeerKey), res.PeerUUID.String()[:8], quoteName(res.PeerName), DescribeNameHolder(*res.NameHolder), trust.ErrNameTaken, ErrRefused)
}

// accept runs Confirm and records the peer.
func accept(ctx context.Context, o Options, res *Result) error {
	if err := screen(o, res.PeerKey); err != nil {
		return err
	}
	if o.Confirm != nil {
		if err := o.Confirm(ctx, *res); err != nil {
			return fmt.Errorf("pairing: not confirmed: %v: %w", err, ErrRefused)
		}
	}
	if o.Recorder != nil {
		var rec trust.Record
		var err error
		if v, ok := o.Recorder.(Voucher); ok && o.Identity != nil {
			rec, res.Vouch, err = v.MarkVerifiedVouch(ctx, o.Identity, res.PeerKey, res.PeerUUID, res.PeerName, res.Method, res.PeerSigningKey)
		} else {
			rec, err = o.Recorder.MarkVerified(ctx, res.PeerKey, res.PeerUUID, res.PeerName, res.Method, res.PeerSigningKey)
		}
		if err != nil {
			return fmt.Errorf("pairing: recording %s as verified: %v: %w", trust.Fingerprint(res.PeerKey), err, ErrRefused)
		}
		res.Record = rec
	}
	return nil
}

// quoteName shows a peer's name (untrusted text) as is when it is
// printable, quoted otherwise.
func quoteName(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}
