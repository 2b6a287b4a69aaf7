
// A receiver that names a member which then leaves having streamed it
// nothing (here a chat that stops; as well a stream that ended before the
// receiver started) says so, not "left before the end of its stream,
// after 0 octets: unexpected EOF" (usertry2 #7).
func TestStreamRecvNamedLeavesWithoutStreaming(t *testing.T) {
	homeA, homeB, port := streamPeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	recv, recvOut := startStreamCmdLive(ctx, nil, "stream", "recv", "family", "--peer-name", "alice", "--progress", "0", "--loopback", "--port", port, "--home", homeB)
	chatCtx, stopChat := context.WithCancel(ctx)
	defer stopChat()
	chatIn, chatInW := io.Pipe()
	defer chatInW.Close()
	chat := startStreamCmdReader(chatCtx, chatIn, "chat", "--secure", "--group", "family", "--loopback", "--port", port, "--home", homeA)
	awaitOutput(t, "bob reads alice", func() bool { return strings.Contains(recvOut.stderr.String(), "reading the stream of alice") })
	stopChat() // alice's chat stops: her node leaves
	waitStreamCmd(t, "alice's chat", chat)
	r := waitStreamCmd(t, "bob's recv", recv)
	if r.code != 1 || !strings.Contains(r.stderr.String(), "left without streaming anything to this device") {
		t.Fatalf("bob's recv: exit %d:\n%s", r.code, r.stderr)
	}
}
