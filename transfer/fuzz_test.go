package transfer

import (
	"strings"
	"testing"
	"unicode"
)

// FuzzParse: any WHISPER content parses without panic, and an OFFER that
// CheckOffer takes has only safe paths.
func FuzzParse(f *testing.F) {
	sum := strings.Repeat("ab", 32)
	id := strings.Repeat("0f", 16)
	f.Add(Tag, kindOffer, `{"id":"`+id+`","files":[{"path":"a/b.jpg","size":3,"mode":420,"sha256":"`+sum+`"}]}`, "")
	f.Add(Tag, kindOffer, `{"id":"`+id+`","files":[{"path":"../x","size":3,"sha256":"`+sum+`"}]}`, "")
	f.Add(Tag, kindData, `{"id":"`+id+`","file":0,"offset":0}`, "abc")
	f.Add(Tag, kindAck, `{"id":"`+id+`","file":0,"offset":3,"resync":true}`, "")
	f.Add(Tag, kindAccept, `{"id":"`+id+`","offsets":[0]}`, "")
	f.Add(Tag, kindDone, `{"id":"`+id+`","ok":true}`, "")
	f.Add("other", "x", "{}", "")
	f.Add(Tag, kindOffer, `{"id":"`+id+`","files":[{"path":"a/.ZYRE-partial/\u202e\u0085x","size":3,"sha256":"`+sum+`"}]}`, "")
	f.Fuzz(func(t *testing.T, tag, kind, hdr, data string) {
		content := [][]byte{[]byte(tag), []byte(kind), []byte(hdr)}
		if data != "" {
			content = append(content, []byte(data))
		}
		_, h, _, _, err := parse(content)
		if err != nil {
			return
		}
		if o, ok := h.(*Offer); ok && CheckOffer(o) == nil {
			for _, f := range o.Files {
				if err := CheckPath(f.Path); err != nil || strings.Contains("/"+f.Path+"/", "/../") || strings.HasPrefix(f.Path, "/") {
					t.Fatalf("unsafe path %q taken", f.Path)
				}
				for _, c := range strings.Split(f.Path, "/") {
					if len(c) > MaxName || strings.EqualFold(c, partialDir) {
						t.Fatalf("component %q of %q taken", c, f.Path)
					}
				}
				for _, r := range f.Path {
					if !unicode.IsGraphic(r) && r != '\u200c' && r != '\u200d' {
						t.Fatalf("%U in %q taken", r, f.Path)
					}
				}
			}
		}
	})
}
