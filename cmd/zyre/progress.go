package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows a transfer on stderr: a progress bar with the total,
// percentage and time left when the size is known, else the octets and
// rate; and counts the octets and their SHA-256 for the summary.
type progress struct {
	bar   *progressbar.ProgressBar // nil without a bar
	lines *frameLines              // the bar's lines when stderr is not a terminal
	env   *cliEnv
	start time.Time
	total int64
	sum   hash.Hash
	ended bool
}

// newProgress starts a progress bar described by verb of size octets (-1:
// unknown), redrawn at most every interval (0: no bar).
func newProgress(env *cliEnv, verb string, size int64, every time.Duration) *progress {
	p := &progress{start: time.Now(), sum: sha256.New(), env: env}
	if every <= 0 {
		return p
	}
	p.bar, p.lines = newBar(env, verb, size, every, progressbar.OptionSpinnerType(14))
	return p
}

// stderrTerminal reports whether env's stderr is a terminal: only there
// are progress bars redrawn with \r.
func stderrTerminal(env *cliEnv) bool {
	f, ok := env.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// minLineEvery is the least interval of progress lines when stderr is not
// a terminal (a log, where each line stays).
const minLineEvery = 5 * time.Second

// frameLines takes the progress bar's frames ("\r" + the bar) when stderr
// is not a terminal and writes them as plain lines: the first at once,
// then the latest at most every interval, and the last at the end
// (flush); never a "\r".
type frameLines struct {
	w       io.Writer
	every   time.Duration
	now     func() time.Time
	last    time.Time // of the last line; zero before the first
	frame   string    // the latest frame, "" once written
	printed string    // the last frame written
}

func newFrameLines(w io.Writer, every time.Duration) *frameLines {
	return &frameLines{w: w, every: max(every, minLineEvery), now: time.Now}
}

func (l *frameLines) Write(b []byte) (int, error) {
	for _, seg := range strings.Split(string(b), "\r") {
		seg = strings.TrimSpace(strings.ReplaceAll(seg, "\x1b[2K", ""))
		if seg != "" {
			l.frame = seg
		}
	}
	if l.frame != "" && (l.last.IsZero() || l.now().Sub(l.last) >= l.every) {
		l.flush()
	}
	return len(b), nil
}

// flush writes the latest frame, unless it was written already.
func (l *frameLines) flush() {
	if l.frame == "" || l.frame == l.printed {
		l.frame = ""
		return
	}
	fmt.Fprintln(l.w, l.frame)
	l.printed, l.frame, l.last = l.frame, "", l.now()
}

// newBar is the progress bar of the CLI on stderr, described by verb, of
// size octets (-1: unknown), redrawn at most every interval; extra options
// follow the common ones. When stderr is not a terminal the bar's frames
// become plain lines (lines, to flush at the end), at most every
// minLineEvery.
func newBar(env *cliEnv, verb string, size int64, every time.Duration, extra ...progressbar.Option) (*progressbar.ProgressBar, *frameLines) {
	var w io.Writer = env.stderr
	var lines *frameLines
	if !stderrTerminal(env) {
		lines = newFrameLines(env.stderr, every)
		w = lines
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("zyre: " + verb),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(every),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
	}
	return progressbar.NewOptions64(size, append(opts, extra...)...), lines
}

// add counts b, which passed.
func (p *progress) add(b []byte) {
	p.total += int64(len(b))
	p.sum.Write(b)
	if p.bar != nil {
		p.bar.Add64(int64(len(b)))
	}
}

// done ends the bar's line.
func (p *progress) done() {
	if p.ended {
		return
	}
	p.ended = true
	if p.bar != nil {
		p.bar.Finish()
		p.bar.Exit()
		if p.lines != nil {
			p.lines.flush()
		} else {
			fmt.Fprintln(p.env.stderr)
		}
	}
}

// summary says how much passed, how fast, and its SHA-256.
func (p *progress) summary() string {
	secs := time.Since(p.start).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(p.total) / secs
	}
	return fmt.Sprintf("%s (%d octets) in %.1fs, %s/s, %.1f Mbit/s, sha256 %s",
		sizeText(float64(p.total)), p.total, secs, sizeText(rate), rate*8/1e6, hex.EncodeToString(p.sum.Sum(nil)))
}

func sizeText(n float64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", n/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", n/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", n/(1<<10))
	}
	return fmt.Sprintf("%.0f B", n)
}

// transferBar is the progress bar of send and receive: octets held by the
// receiver of a known total, with percentage and time left.
type transferBar struct {
	env   *cliEnv
	bar   *progressbar.ProgressBar
	lines *frameLines // the bar's lines when stderr is not a terminal
	ended bool
}

func newTransferBar(env *cliEnv, verb string, total int64, every time.Duration) *transferBar {
	t := &transferBar{env: env}
	if every <= 0 {
		return t
	}
	t.bar, t.lines = newBar(env, verb, total, every)
	return t
}

// set shows held octets of total.
func (t *transferBar) set(held, total int64) {
	if t.bar != nil {
		t.bar.Set64(held)
	}
}

func (t *transferBar) done() {
	if t.bar == nil || t.ended {
		return
	}
	t.ended = true
	t.bar.Exit()
	if t.lines != nil {
		t.lines.flush()
		return
	}
	fmt.Fprintln(t.env.stderr)
}
