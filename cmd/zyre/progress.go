package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows a transfer on stderr: a progress bar with the total,
// percentage and time left when the size is known, else the octets and
// rate; and counts the octets and their SHA-256 for the summary.
type progress struct {
	bar   *progressbar.ProgressBar // nil without a bar
	lines *lineProgress            // instead of the bar when stderr is not a terminal
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
	if !stderrTerminal(env) {
		p.lines = newLineProgress(env, verb, size, every)
		return p
	}
	p.bar = newBar(env, verb, size, every, progressbar.OptionSpinnerType(14))
	return p
}

// stderrTerminal reports whether env's stderr is a terminal: only there
// are progress bars redrawn with \r.
func stderrTerminal(env *cliEnv) bool {
	f, ok := env.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// minLineEvery is the least interval of progress lines (not a terminal:
// a log, where each line stays).
const minLineEvery = 5 * time.Second

// lineProgress is the progress of a transfer when stderr is not a
// terminal: a plain line at most every interval (minLineEvery at least),
// never a \r frame.
type lineProgress struct {
	w     io.Writer
	verb  string
	size  int64 // -1: unknown
	every time.Duration
	start time.Time
	last  time.Time
	now   func() time.Time
}

func newLineProgress(env *cliEnv, verb string, size int64, every time.Duration) *lineProgress {
	now := time.Now()
	return &lineProgress{w: env.stderr, verb: verb, size: size, every: max(every, minLineEvery), start: now, last: now, now: time.Now}
}

// update says done octets (of size, when known) when the interval has
// passed since the last line.
func (l *lineProgress) update(done, size int64) {
	now := l.now()
	if now.Sub(l.last) < l.every {
		return
	}
	l.last = now
	secs := now.Sub(l.start).Seconds()
	rate := ""
	if secs > 0 {
		rate = fmt.Sprintf(", %s/s", sizeText(float64(done)/secs))
	}
	if size > 0 {
		fmt.Fprintf(l.w, "zyre: %s: %s of %s (%d%%)%s\n", l.verb, sizeText(float64(done)), sizeText(float64(size)), done*100/size, rate)
		return
	}
	fmt.Fprintf(l.w, "zyre: %s: %s%s\n", l.verb, sizeText(float64(done)), rate)
}

// newBar is the progress bar of the CLI on stderr, described by verb, of
// size octets (-1: unknown), redrawn at most every interval; extra options
// follow the common ones.
func newBar(env *cliEnv, verb string, size int64, every time.Duration, extra ...progressbar.Option) *progressbar.ProgressBar {
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(env.stderr),
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
	return progressbar.NewOptions64(size, append(opts, extra...)...)
}

// add counts b, which passed.
func (p *progress) add(b []byte) {
	p.total += int64(len(b))
	p.sum.Write(b)
	if p.bar != nil {
		p.bar.Add64(int64(len(b)))
	}
	if p.lines != nil {
		p.lines.update(p.total, p.lines.size)
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
		fmt.Fprintln(p.env.stderr)
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
	lines *lineProgress // instead of the bar when stderr is not a terminal
	ended bool
}

func newTransferBar(env *cliEnv, verb string, total int64, every time.Duration) *transferBar {
	t := &transferBar{env: env}
	if every <= 0 {
		return t
	}
	if !stderrTerminal(env) {
		t.lines = newLineProgress(env, verb, total, every)
		return t
	}
	t.bar = newBar(env, verb, total, every)
	return t
}

// set shows held octets of total.
func (t *transferBar) set(held, total int64) {
	if t.bar != nil {
		t.bar.Set64(held)
	}
	if t.lines != nil {
		t.lines.update(held, total)
	}
}

func (t *transferBar) done() {
	if t.bar == nil || t.ended {
		return
	}
	t.ended = true
	t.bar.Exit()
	fmt.Fprintln(t.env.stderr)
}
