package main

import (
	"bufio"
	"context"
	"fmt"
)

// runChat implements "zyre chat": join a group (default "chat"), shout
// every line read from stdin to it, print every event. It ends on EOF of
// stdin or when interrupted, and says goodbye.
func runChat(ctx context.Context, env *cliEnv, args []string) error {
	f := newNodeFlags(env, "chat")
	if err := f.parse(args); err != nil {
		return err
	}
	if len(f.groups) == 0 {
		f.groups = listFlag{"chat"}
	}
	n, err := f.startNode(ctx, env)
	if err != nil {
		return err
	}
	defer stopNode(n)
	fmt.Fprintf(env.stderr, "zyre: chatting in %s as %s %s\n", f.groups[0], n.Name(), uuidText(n.UUID()))

	lines := make(chan string)
	readDone := make(chan error, 1)
	go func() {
		// This goroutine may outlive the command while blocked on a
		// terminal read; the process exits right after.
		sc := bufio.NewScanner(env.stdin)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		readDone <- sc.Err()
	}()
	for {
		select {
		case l := <-lines:
			if l == "" {
				continue
			}
			if err := n.Shout(f.groups[0], []byte(l)); err != nil {
				fmt.Fprintf(env.stderr, "zyre: %v\n", err)
			}
		case err := <-readDone:
			if err != nil {
				return fmt.Errorf("reading stdin: %w", err)
			}
			return nil
		case e, ok := <-n.Events():
			if !ok {
				return nil
			}
			fmt.Fprintln(env.stdout, f.eventText(e))
		case <-ctx.Done():
			return nil
		}
	}
}
