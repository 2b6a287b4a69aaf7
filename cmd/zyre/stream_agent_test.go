package main

import (
	"testing"

	"github.com/zyre-go/zyre/agent"
)

// The agent speaks the probe, removal and acknowledgement WHISPERs of the
// one-shot stream and chat: the same frames and wait.
func TestAgentStreamWireMatches(t *testing.T) {
	for _, c := range []struct{ ours, agents any }{
		{streamAck, agent.StreamAck},
		{probeFrame, agent.ProbeFrame},
		{probedFrame, agent.ProbedFrame},
		{removedFrame, agent.RemovedFrame},
		{probeWait, agent.ProbeWait},
	} {
		if c.ours != c.agents {
			t.Errorf("cmd/zyre has %v, the agent %v", c.ours, c.agents)
		}
	}
}
