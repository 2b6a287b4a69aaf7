package pairing

import (
	"errors"
	"fmt"
	"strings"
)

// newCodeHint is the advice after a failure that burns the code or token.
const newCodeHint = "start again with a new code (`zyre pair` on the showing device)"

// codesGoneText is the displayer's word to a short-code joiner once
// every code of the pairing was spent (Options.MaxCodes).
const codesGoneText = "every short code this pairing showed was spent by devices on this network; it shows no more codes: pair by its QR code"

// newCodeShownHint is the advice to a joiner whose code was spent or did
// not match: the showing device shows a fresh one after a failed try.
const newCodeShownHint = "type the new code the showing device shows now (it shows a fresh one after a failed try; if it was not yours, tell the person there)"

// askNewCodeHint is the advice to a device that lost a race for a code.
const askNewCodeHint = "if it was not yours, tell the person at the showing device; ask for a new code (`zyre pair` there again)"

// Explain says in one sentence, for a person, why a pairing failed, from
// the sentinel err wraps, with a hint of what to do next (or ""): the
// layers' "pairing: ... pairing: ..." and the other side's own wording of
// the same cause are left out. It returns "", "" when err wraps none.
func Explain(err error) (sentence, hint string) {
	var remote *RemoteError
	fromPeer := errors.As(err, &remote)
	switch {
	case errors.Is(err, ErrWrongCode) && fromPeer:
		// The showing device's own report (Options.EndOnCodeFailure).
		return "the short code did not match (mistyped, or someone in the middle); nothing was recorded", newCodeHint
	case errors.Is(err, ErrWrongCode):
		// Found here: our code is not the one shown now (a typo, a code
		// spent since, or someone in the middle). The showing device
		// names us and shows a fresh code; the code we typed is spent.
		return "the short code did not match (mistyped, or the showing device shows another code now); this code is spent and nothing was recorded", newCodeShownHint
	case errors.Is(err, ErrCodeUsed) && fromPeer && strings.Contains(remote.Text, codesGoneText):
		return "every short code the showing device showed was spent by devices on this network (someone there keeps spending them); nothing was recorded", "pair by the showing device's QR code (zyre pair ZYRE:...), or start again where no stranger shares the network"
	case errors.Is(err, ErrCodeUsed) && fromPeer && strings.Contains(remote.Text, "this device before"):
		return "this short code was tried already by this device (one try per code); nothing was recorded", newCodeHint
	case errors.Is(err, ErrCodeUsed):
		// The code was right, but another device took it first; the
		// showing device names it, and shows a fresh code when that
		// device's exchange fails.
		return "the code was spent by another device on this network before yours (the showing device's screen says which); nothing was recorded", newCodeShownHint
	case errors.Is(err, ErrExposed) && fromPeer:
		return "more than one device tried this code or token (someone else may have seen it), and the showing device's user did not pick this one; nothing was recorded", askNewCodeHint
	case errors.Is(err, ErrExposed):
		return "more than one device tried this code or token, and none was picked: someone else may have seen it; nothing was recorded", "start again with a new code (`zyre pair`), where nobody else can see the screen"
	case errors.Is(err, ErrBurnt):
		return "the token was destroyed after too many failed attempts; nothing was recorded", newCodeHint
	case errors.Is(err, ErrExpired):
		return "the pairing token has expired; nothing was recorded", newCodeHint
	case errors.Is(err, ErrUsed):
		return "the pairing token was already used by another device (a token pairs one device; the showing device's screen says which); nothing was recorded", askNewCodeHint
	case errors.Is(err, ErrChecksum):
		return "the token is mistyped or damaged (its checksum does not match)", "copy the token again, or scan its QR code"
	case errors.Is(err, ErrBadToken):
		return "not a pairing token (ZYRE:...)", ""
	case errors.Is(err, ErrBadCode):
		return fmt.Sprintf("not a short code: want %d digits", CodeDigits), ""
	case errors.Is(err, ErrBadProof):
		return "the other device did not prove the pairing secret (a damaged token, or someone in the middle); nothing was recorded", newCodeHint
	case errors.Is(err, ErrHandshake):
		return "the device at the token's address does not hold the token's key (someone in the middle?); nothing was recorded", ""
	case errors.Is(err, ErrRefused) && fromPeer:
		// Its reason (such as a revoked key) is worth reading once.
		why := strings.ReplaceAll(remote.Text, "pairing: ", "")
		why = strings.TrimSuffix(why, ": "+strings.TrimPrefix(ErrRefused.Error(), "pairing: "))
		return fmt.Sprintf("the other device refused the pairing (it said: %s); nothing was recorded", why), ""
	case errors.Is(err, ErrRefused):
		return "pairing refused: " + strings.ReplaceAll(err.Error(), "pairing: ", ""), ""
	case errors.Is(err, ErrAmbiguous):
		return strings.ReplaceAll(err.Error(), "pairing: ", ""), ""
	case errors.Is(err, errOtherCode):
		// A device here shows a code, not this one: a typo, or the code
		// was spent and it shows a fresh one now.
		t := strings.TrimSuffix(err.Error(), ": "+errOtherCode.Error()+": "+errNotAnnounced.Error()+": "+ErrUnreachable.Error())
		return strings.ReplaceAll(t, "pairing: ", ""), "check the code, and type the one the showing device shows now (it shows a fresh code when one was spent)"
	case errors.Is(err, errNotAnnounced):
		// Discovery found nobody: a mistyped code looks exactly so.
		t := strings.TrimSuffix(err.Error(), ": "+errNotAnnounced.Error()+": "+ErrUnreachable.Error())
		return strings.ReplaceAll(t, "pairing: ", ""), "check the code (a typo finds nobody), and that the other device still shows it on this network"
	case errors.Is(err, ErrUnreachable):
		// The outermost layer says where; the sentinel's own text
		// ("displayer unreachable") adds nothing.
		t := strings.TrimSuffix(err.Error(), ": "+ErrUnreachable.Error())
		return "the showing device did not answer: " + strings.ReplaceAll(t, "pairing: ", ""), "check that both devices are on the same network and that it still shows the code"
	}
	return "", ""
}
