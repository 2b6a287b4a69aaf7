package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress shows a transfer on stderr: a progress bar with the total,
// percentage and time left when the size is known, else the octets and
// rate; and counts the octets and their SHA-256 for the summary.
type progress struct {
	bar   *progressbar.ProgressBar // nil without a bar
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
	p.bar = newBar(env, verb, size, every, progressbar.OptionSpinnerType(14))
	return p
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
	ended bool
}

func newTransferBar(env *cliEnv, verb string, total int64, every time.Duration) *transferBar {
	t := &transferBar{env: env}
	if every <= 0 {
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
}

func (t *transferBar) done() {
	if t.bar == nil || t.ended {
		return
	}
	t.ended = true
	t.bar.Exit()
	fmt.Fprintln(t.env.stderr)
}
