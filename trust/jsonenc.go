package trust

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// A hand-written encoder of journal entries: the hot path of a node
// admitting new peers. It writes exactly what encoding/json writes for
// journalEntry (compact, SetEscapeHTML(false)); TestEntryEncoding and
// FuzzEntryEncoding hold it to that.

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaped as encoding/json
// does without HTML escaping.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendField(dst []byte, first *bool, name string) []byte {
	if !*first {
		dst = append(dst, ',')
	}
	*first = false
	dst = append(dst, '"')
	dst = append(dst, name...)
	return append(dst, '"', ':')
}

func appendStr(dst []byte, first *bool, name, v string, omitEmpty bool) []byte {
	if omitEmpty && v == "" {
		return dst
	}
	return appendJSONString(appendField(dst, first, name), v)
}

func appendTime(dst []byte, first *bool, name string, t *time.Time) []byte {
	if t == nil {
		return dst
	}
	dst = append(appendField(dst, first, name), '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

// appendRecordJSON appends fr as encoding/json encodes a fileRecord.
func appendRecordJSON(dst []byte, fr *fileRecord) []byte {
	first := true
	dst = append(dst, '{')
	dst = appendStr(dst, &first, "uuid", fr.UUID, false)
	dst = appendStr(dst, &first, "name", fr.Name, false)
	dst = appendStr(dst, &first, "key", fr.Key, false)
	dst = appendStr(dst, &first, "fingerprint", fr.Fingerprint, false)
	dst = strconv.AppendBool(appendField(dst, &first, "bound"), fr.Bound)
	dst = appendStr(dst, &first, "state", fr.State, false)
	ft := fr.FirstSeen
	dst = appendTime(dst, &first, "first_seen", &ft)
	dst = appendTime(dst, &first, "last_seen", fr.LastSeen)
	dst = appendStr(dst, &first, "last_addr", fr.LastAddr, true)
	dst = appendStr(dst, &first, "introduced_by", fr.IntroducedBy, true)
	dst = appendStr(dst, &first, "verified_method", fr.VerifiedMethod, true)
	dst = appendTime(dst, &first, "verified_at", fr.VerifiedAt)
	dst = appendStr(dst, &first, "signing_key", fr.SigningKey, true)
	dst = appendTime(dst, &first, "binding_time", fr.BindingTime)
	dst = appendTime(dst, &first, "revoked_at", fr.RevokedAt)
	dst = appendStr(dst, &first, "revoked_from", fr.RevokedFrom, true)
	dst = appendStr(dst, &first, "revoked_by", fr.RevokedBy, true)
	dst = appendStr(dst, &first, "revoke_reason", fr.RevokeReason, true)
	if kc := fr.KeyChange; kc != nil {
		f2 := true
		dst = append(appendField(dst, &first, "key_change"), '{')
		dst = appendStr(dst, &f2, "uuid", kc.UUID, false)
		dst = appendStr(dst, &f2, "name", kc.Name, false)
		dst = appendStr(dst, &f2, "key", kc.Key, false)
		dst = appendStr(dst, &f2, "fingerprint", kc.Fingerprint, false)
		seen := kc.Seen
		dst = appendTime(dst, &f2, "seen", &seen)
		dst = appendStr(dst, &f2, "addr", kc.Addr, true)
		dst = append(dst, '}')
	}
	dst = appendStr(dst, &first, "notes", fr.Notes, true)
	return append(dst, '}')
}
