// Package client talks to a running zyre agent (the "zyre agent" command)
// over its control socket: line-delimited JSON on a Unix socket, as
// spec/agent.md describes. It holds the protocol's types so that an app in
// another process needs only this package.
//
// A Client carries one request at a time. Subscribe turns its connection
// into a stream of events; open a second Client for requests meanwhile.
package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// ProtocolVersion is the version of the control protocol in Info.
const ProtocolVersion = 1

// MaxLine bounds one line of the protocol, either way.
const MaxLine = 1 << 20

// SocketName is the socket's file name in its directory.
const SocketName = "agent.sock"

// DefaultSocket returns where the agent of this user listens:
// $ZYRE_AGENT_SOCKET, else $XDG_RUNTIME_DIR/zyre/agent.sock, else
// zyre-UID/agent.sock in the temporary directory ($TMPDIR, else /tmp).
func DefaultSocket(getenv func(string) string) string {
	if p := getenv("ZYRE_AGENT_SOCKET"); p != "" {
		return p
	}
	if d := getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "zyre", SocketName)
	}
	tmp := getenv("TMPDIR")
	if tmp == "" {
		tmp = "/tmp"
	}
	return filepath.Join(tmp, "zyre-"+strconv.Itoa(os.Getuid()), SocketName)
}

// Request is one line from the client.
type Request struct {
	ID      uint64   `json:"id"`
	Op      string   `json:"op"`
	Group   string   `json:"group,omitempty"`
	Peer    string   `json:"peer,omitempty"`
	Content [][]byte `json:"content,omitempty"`
	// Trust (JSON "change") and Pair carry the arguments of the trust changes and of
	// "pair" (trustops.go, pair.go).
	Trust *TrustArgs `json:"change,omitempty"`
	Pair  *PairArgs  `json:"pair,omitempty"`
}

// Response is one line from the agent: the answer to the request with the
// same ID (OK with a Result, or Error), or an Event after "subscribe".
type Response struct {
	ID     uint64          `json:"id"`
	OK     bool            `json:"ok"`
	Error  string          `json:"error,omitempty"`
	Hint   string          `json:"hint,omitempty"` // with Error: what the user may do next
	Result json.RawMessage `json:"result,omitempty"`
	Event  *Event          `json:"event,omitempty"`
	Pair   *PairProgress   `json:"pair,omitempty"` // a step of "pair" (pair.go)
}

// Error is a failure the agent reported: its text, and a hint of what
// to do next when it has one.
type Error struct {
	Text string
	Hint string
}

func (e *Error) Error() string { return "agent: " + e.Text }

// Info describes the agent and its node ("info").
type Info struct {
	Protocol    int       `json:"protocol"`
	Version     string    `json:"version"`
	PID         int       `json:"pid"`
	Name        string    `json:"name"`
	UUID        string    `json:"uuid"`
	Endpoint    string    `json:"endpoint"`
	Secure      bool      `json:"secure"`
	PublicKey   string    `json:"public_key,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	Home        string    `json:"home,omitempty"`
	Groups      []string  `json:"groups"`
	Started     time.Time `json:"started"`
	// Where the node runs, as "zyre agent" was told: its beacon port
	// (0: not said, an older agent), --interface ("" for that of the
	// default route) and --loopback. A command compares them with its
	// own flags (a differing one asks for a second node).
	BeaconPort int    `json:"beacon_port,omitempty"`
	Interface  string `json:"interface,omitempty"`
	Loopback   bool   `json:"loopback,omitempty"`
}

// Presence values of a Member.
const (
	Alive   = "alive"   // heard from within the evasive interval
	Evasive = "evasive" // nothing heard for the evasive interval: pinged
	Silent  = "idle"    // beacons heard, but no message for the silent interval (ZRE's SILENT): an idle peer
)

// Member is one peer the agent's node knows ("members").
type Member struct {
	Name        string    `json:"name"`
	UUID        string    `json:"uuid"`
	ID          string    `json:"id"` // the short form: the UUID's first 8 hex digits
	Address     string    `json:"address"`
	Presence    string    `json:"presence"`
	Trust       string    `json:"trust"` // the trust store's state of its key; "-" in plain mode
	Fingerprint string    `json:"fingerprint,omitempty"`
	Groups      []string  `json:"groups"`
	Since       time.Time `json:"since"` // when its presence last changed
}

// Event is one event of the node ("subscribe"). Type is the zre event
// type in capitals (ENTER, EXIT, JOIN, LEAVE, WHISPER, SHOUT, EVASIVE,
// SILENT, REFUSED, KEY-CHANGED, ...). Dropped counts the events this
// subscriber missed just before this one because it read too slowly.
type Event struct {
	Type    string            `json:"type"`
	Peer    string            `json:"peer"`
	Name    string            `json:"name"`
	Group   string            `json:"group,omitempty"`
	Addr    string            `json:"addr,omitempty"`
	Content [][]byte          `json:"content,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Stage   string            `json:"stage,omitempty"`
	Key     string            `json:"key,omitempty"`
	Reason  string            `json:"reason,omitempty"`
	Time    time.Time         `json:"time"`
	Dropped uint64            `json:"dropped,omitempty"`
}

// TrustRecord is one record of a trust store: the one JSON shape of a
// record, in the agent's answers ("trust.list", the trust changes, "pair")
// and in the CLI's --json output ("zyre trust list --json", "show --json",
// "log --json"). Keys are Z85, fingerprints as keystore.Fingerprint; the
// fields from LastAddr on are left out when they do not apply.
type TrustRecord struct {
	Name           string     `json:"name"`
	UUID           string     `json:"uuid"`
	Key            string     `json:"key"`
	Fingerprint    string     `json:"fingerprint"`
	Bound          bool       `json:"bound"`
	State          string     `json:"state"` // tofu, verified, introduced or revoked
	FirstSeen      time.Time  `json:"first_seen"`
	LastSeen       time.Time  `json:"last_seen"`
	LastAddr       string     `json:"last_addr,omitempty"`
	IntroducedBy   string     `json:"introduced_by,omitempty"` // the introducer's fingerprint
	VerifiedMethod string     `json:"verified_method,omitempty"`
	VerifiedAt     time.Time  `json:"verified_at,omitzero"`
	SigningKey     string     `json:"signing_key,omitempty"` // Ed25519, Z85
	RevokedAt      time.Time  `json:"revoked_at,omitzero"`
	RevokedBy      string     `json:"revoked_by,omitempty"` // the signer's fingerprint; empty for a local revocation
	RevokeReason   string     `json:"revoke_reason,omitempty"`
	KeyChange      *KeyChange `json:"key_change,omitempty"`
	Notes          string     `json:"notes,omitempty"`
}

// KeyChange is another key presented by a peer known with the record's
// key: refused until "zyre trust accept".
type KeyChange struct {
	UUID        string    `json:"uuid"`
	Name        string    `json:"name"`
	Key         string    `json:"key"`
	Fingerprint string    `json:"fingerprint"`
	Seen        time.Time `json:"seen"`
	Addr        string    `json:"addr,omitempty"`
}

// ErrNoAgent: nothing listens at the socket.
var ErrNoAgent = errors.New("client: no agent")

// ErrForeignAgent: the socket is served by a process of another user
// (one who made the socket's directory first, say); Dial refuses it.
var ErrForeignAgent = errors.New("client: not our agent")

// Client is one connection to the agent.
type Client struct {
	conn net.Conn
	rd   *bufio.Reader
	mu   sync.Mutex
	next uint64
	subd bool
}

// Dial connects to the agent at path. It returns an error wrapping
// ErrNoAgent when no agent listens there.
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %v", ErrNoAgent, path, err)
	}
	// The socket may sit where another user could have made it (the
	// temporary directory when $XDG_RUNTIME_DIR is unset): talk only to a
	// process of our own uid, by the kernel's word, before sending it
	// anything.
	uid, err := PeerUID(conn.(*net.UnixConn))
	if err != nil || uid != os.Getuid() {
		conn.Close()
		if err != nil {
			return nil, fmt.Errorf("client: the socket %s: no peer credentials: %w", path, err)
		}
		return nil, fmt.Errorf("%w at %s: the process listening there is of uid %d, not ours (%d)", ErrForeignAgent, path, uid, os.Getuid())
	}
	return &Client{conn: conn, rd: bufio.NewReaderSize(conn, 64<<10)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// readLine reads one line of at most MaxLine octets.
func (c *Client) readLine() ([]byte, error) { return c.readLineMax(MaxLine) }

// readLineMax reads one line of at most limit octets.
func (c *Client) readLineMax(limit int) ([]byte, error) {
	var line []byte
	for {
		part, isPrefix, err := c.rd.ReadLine()
		if err != nil {
			return nil, err
		}
		line = append(line, part...)
		if len(line) > limit {
			return nil, fmt.Errorf("client: line longer than %d octets", limit)
		}
		if !isPrefix {
			return line, nil
		}
	}
}

// Call sends req (its ID is set here) and decodes the result into out
// (which may be nil). The agent's refusal is an error.
func (c *Client) Call(ctx context.Context, req Request, out any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subd {
		return errors.New("client: the connection carries events since Subscribe")
	}
	resp, err := c.roundTrip(ctx, req)
	if err != nil {
		return err
	}
	if out != nil && len(resp.Result) > 0 {
		if err := json.Unmarshal(resp.Result, out); err != nil {
			return fmt.Errorf("client: %s: bad result: %w", req.Op, err)
		}
	}
	return nil
}

func (c *Client) roundTrip(ctx context.Context, req Request) (Response, error) {
	c.next++
	req.ID = c.next
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	b, err := json.Marshal(req)
	if err != nil {
		return Response{}, err
	}
	if _, err := c.conn.Write(append(b, '\n')); err != nil {
		return Response{}, c.ctxErr(ctx, fmt.Errorf("client: %s: %w", req.Op, err))
	}
	line, err := c.readLine()
	if err != nil {
		return Response{}, c.ctxErr(ctx, fmt.Errorf("client: %s: %w", req.Op, err))
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return Response{}, fmt.Errorf("client: %s: bad response: %w", req.Op, err)
	}
	if !resp.OK {
		return resp, fmt.Errorf("agent: %s", resp.Error)
	}
	if resp.ID != req.ID {
		return resp, fmt.Errorf("client: %s: response %d to request %d", req.Op, resp.ID, req.ID)
	}
	return resp, nil
}

func (c *Client) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Info describes the agent and its node.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var i Info
	err := c.Call(ctx, Request{Op: "info"}, &i)
	return i, err
}

// Members lists the peers the node knows, by name then UUID.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var m []Member
	err := c.Call(ctx, Request{Op: "members"}, &m)
	return m, err
}

// Join makes the node join group.
func (c *Client) Join(ctx context.Context, group string) error {
	return c.Call(ctx, Request{Op: "join", Group: group}, nil)
}

// Leave makes the node leave group.
func (c *Client) Leave(ctx context.Context, group string) error {
	return c.Call(ctx, Request{Op: "leave", Group: group}, nil)
}

// Shout sends a message of one or more frames to group.
func (c *Client) Shout(ctx context.Context, group string, content ...[]byte) error {
	return c.Call(ctx, Request{Op: "shout", Group: group, Content: content}, nil)
}

// Whisper sends a message to one peer, named by its UUID.
func (c *Client) Whisper(ctx context.Context, peer string, content ...[]byte) error {
	return c.Call(ctx, Request{Op: "whisper", Peer: peer, Content: content}, nil)
}

// TrustList returns the records of the agent's trust store.
func (c *Client) TrustList(ctx context.Context) ([]TrustRecord, error) {
	var r []TrustRecord
	err := c.Call(ctx, Request{Op: "trust.list"}, &r)
	return r, err
}

// Subscribe asks for the node's events from now on; read them with Next.
// The connection carries nothing else afterwards.
func (c *Client) Subscribe(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.roundTrip(ctx, Request{Op: "subscribe"}); err != nil {
		return err
	}
	c.subd = true
	return nil
}

// Next returns the next event after Subscribe. It ends with ctx (its error)
// or when the agent goes away (io.EOF).
func (c *Client) Next(ctx context.Context) (Event, error) {
	stop := context.AfterFunc(ctx, func() { c.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	line, err := c.readLine()
	if err != nil {
		return Event{}, c.ctxErr(ctx, err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return Event{}, fmt.Errorf("client: bad event: %w", err)
	}
	if resp.Event == nil {
		if resp.Error != "" {
			return Event{}, fmt.Errorf("agent: %s", resp.Error)
		}
		return Event{}, errors.New("client: a line without an event")
	}
	return *resp.Event, nil
}
