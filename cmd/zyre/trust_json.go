package main

import (
	"bytes"
	"crypto/ed25519"
	"time"

	"github.com/zyre-go/zyre/agent"
	"github.com/zyre-go/zyre/agent/client"
	"github.com/zyre-go/zyre/curve"
	"github.com/zyre-go/zyre/trust"
)

// jsonLog is the --json form of one signer's statements ("zyre trust log").
type jsonLog struct {
	Signer     string              `json:"signer"`
	Self       bool                `json:"self"`
	Owner      *client.TrustRecord `json:"owner,omitempty"`
	Statements []jsonStatement     `json:"statements"`
}

type jsonStatement struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Key    string    `json:"key,omitempty"`
	UUID   string    `json:"uuid,omitempty"`
	Name   string    `json:"name,omitempty"`
	Reason string    `json:"reason,omitempty"`
}

func logsJSON(logs []trust.Log, self ed25519.PublicKey) []jsonLog {
	out := make([]jsonLog, 0, len(logs))
	for _, l := range logs {
		sk, _ := curve.EncodeZ85(l.Signer)
		j := jsonLog{Signer: sk, Self: self != nil && bytes.Equal(l.Signer, self), Statements: []jsonStatement{}}
		if l.Owner != nil {
			r := agent.TrustRecordOf(l.Owner)
			j.Owner = &r
		}
		for _, s := range l.Statements {
			js := jsonStatement{Seq: s.Seq, Time: s.Time, Kind: s.Kind().String()}
			switch b := s.Body.(type) {
			case *trust.Vouch:
				js.Key, js.UUID, js.Name = b.Key.Z85(), b.UUID.String(), b.Name
			case *trust.Revoke:
				js.Key, js.Reason = b.Key.Z85(), b.Reason
			case *trust.Binding:
				js.Key = b.Key.Z85()
			}
			j.Statements = append(j.Statements, js)
		}
		out = append(out, j)
	}
	return out
}
