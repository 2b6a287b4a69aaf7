package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows a transfer on stderr: on a terminal, a progress bar with
// the total, percentage and time left when the size is known, else the
// octets and rate; elsewhere plain lines (plainLines). It counts the
// octets and their SHA-256 for the summary.
type progress struct {
	bar   *progressbar.ProgressBar // nil without a bar
	lines *plainLines              // instead of the bar when stderr is not a terminal
	env   *cliEnv
	start time.Time
	total int64
	size  int64 // -1: unknown
	sum   hash.Hash
	ended bool
}

// newProgress starts a progress bar described by verb of size octets (-1:
// unknown), redrawn at most every interval (0: no bar).
func newProgress(env *cliEnv, verb string, size int64, every time.Duration) *progress {
	p := &progress{start: time.Now(), sum: sha256.New(), env: env, size: size}
	if every <= 0 {
		return p
	}
	p.bar, p.lines = newBar(env, verb, size, every, progressbar.OptionSpinnerType(14))
	return p
}

// stderrTerminal reports whether env's stderr is a terminal: only there
// are progress bars and spinners drawn (and redrawn with \r).
func stderrTerminal(env *cliEnv) bool {
	f, ok := env.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// barBreak is what ends a progress bar's line before a notice: a line
// break on a terminal, where a bar may be drawn, else nothing.
func barBreak(env *cliEnv) string {
	if stderrTerminal(env) {
		return "\n"
	}
	return ""
}

// minLineEvery is the interval of progress lines when stderr is not a
// terminal (a log, where each line stays), unless --progress says.
const minLineEvery = 5 * time.Second

// progressInterval is the interval of the progress that --progress (fs)
// gave as d: not on a terminal, and unless given, a plain line at most
// every minLineEvery.
func progressInterval(env *cliEnv, fs *flag.FlagSet, d time.Duration) time.Duration {
	if d > 0 && !stderrTerminal(env) && !flagSet(fs, "progress") {
		return max(d, minLineEvery)
	}
	return d
}

// plainLines is the progress when stderr is not a terminal: no bar, no
// spinner, no \r; a plain line ("zyre: sending: 3.5 MiB of 4.0 MiB
// (87%)") at most every interval (progressInterval), and none at the end:
// the command's summary says how it ended.
type plainLines struct {
	w     io.Writer
	verb  string
	size  int64 // -1: unknown
	every time.Duration
	now   func() time.Time
	last  time.Time // of the last line, or the start
}

func newPlainLines(w io.Writer, verb string, size int64, every time.Duration) *plainLines {
	return &plainLines{w: w, verb: verb, size: size, every: every, now: time.Now, last: time.Now()}
}

// set says held octets, if the interval has passed since the last line.
func (l *plainLines) set(held, size int64) {
	now := l.now()
	if now.Sub(l.last) < l.every {
		return
	}
	l.last = now
	if size > 0 {
		fmt.Fprintf(l.w, "zyre: %s: %s of %s (%d%%)\n", l.verb, sizeText(float64(held)), sizeText(float64(size)), held*100/size)
		return
	}
	fmt.Fprintf(l.w, "zyre: %s: %s\n", l.verb, sizeText(float64(held)))
}

// newBar is the progress bar of the CLI on stderr, described by verb, of
// size octets (-1: unknown), redrawn at most every interval; extra options
// follow the common ones. When stderr is not a terminal there is no bar:
// plain lines instead, at most every interval.
func newBar(env *cliEnv, verb string, size int64, every time.Duration, extra ...progressbar.Option) (*progressbar.ProgressBar, *plainLines) {
	if !stderrTerminal(env) {
		return nil, newPlainLines(env.stderr, verb, size, every)
	}
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
	return progressbar.NewOptions64(size, append(opts, extra...)...), nil
}

// add counts b, which passed.
func (p *progress) add(b []byte) {
	p.total += int64(len(b))
	p.sum.Write(b)
	if p.bar != nil {
		p.bar.Add64(int64(len(b)))
	}
	if p.lines != nil {
		p.lines.set(p.total, p.lines.size)
	}
}

// done ends the bar's line: at 100% when all size octets passed (or the
// size is unknown), else where it was (an interrupted stream is not
// drawn as complete, usertry5 #3).
func (p *progress) done() {
	if p.ended {
		return
	}
	p.ended = true
	if p.bar != nil {
		if p.size < 0 || p.total >= p.size {
			p.bar.Finish()
		}
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
	lines *plainLines // instead of the bar when stderr is not a terminal
	ended bool
	held  int64 // the last octets held that set said
	total int64 // and of what total
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
	t.held, t.total = held, total
	if t.bar != nil {
		t.bar.Set64(held)
	}
	if t.lines != nil {
		t.lines.set(held, total)
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

// interruptedSend is the one line of a "zyre send" interrupted (Ctrl-C)
// with held of total octets at the receiver: a partial transfer that
// resumes.
func interruptedSend(held, total int64) error {
	return fmt.Errorf("interrupted after %s of %s: the receiver keeps what it holds; run the same command again to resume",
		sizeText(float64(held)), sizeText(float64(total)))
}

// interruptedReceive is the one line of a "zyre receive" interrupted
// (Ctrl-C) with held of total octets in dir: the sender was told, and the
// same files sent again to a receive into dir resume.
func interruptedReceive(held, total int64, dir string) error {
	return fmt.Errorf("interrupted after %s of %s (%d%%): kept in %s (the sender was told); run zyre receive --dir %s again, and the same send, to resume",
		sizeText(float64(held)), sizeText(float64(total)), percentOf(held, total), filepath.Join(dir, ".zyre-partial"), dir)
}

// stoppedSentence reports whether err, from the agent, is the other side
// of a transfer stopping (transfer.StoppedError), which says it all:
// then the sentence, without the "agent: " before it.
func stoppedSentence(err error) (error, bool) {
	t, ok := strings.CutPrefix(err.Error(), "agent: ")
	if ok && (strings.Contains(t, " stopped receiving after ") || strings.Contains(t, " stopped answering after ") ||
		strings.Contains(t, " stopped sending after ")) {
		return errors.New(t), true
	}
	return err, false
}
