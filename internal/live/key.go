package live

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"

	"github.com/jitstream/jitstream/internal/library"
)

// keyMACLen is the length of the MAC part of a stream key.
const keyMACLen = 26

// maxNameLen bounds a stream name: the asset ids derived from it (plus
// "-N") stay valid names.
const maxNameLen = 48

// CheckName validates a stream name: letters, digits, '_' and '-', not
// starting with '_' or '-', at most 48.
func CheckName(name string) error {
	if !library.ValidName(name) || len(name) > maxNameLen {
		return fmt.Errorf("%w: stream name %q (use letters, digits, '_' and '-', at most %d)", library.ErrBadName, name, maxNameLen)
	}
	return nil
}

// Key is the stream key of user's stream name, derived statelessly from
// the deployment's secret (auth.LoadSecret):
//
//	NAME-base32(HMAC-SHA256(secret, "live-key v1/"+user+"/"+NAME))[:26], lower case
//
// Whoever holds it may push the stream name of user.
func Key(secret []byte, user, name string) string {
	return name + "-" + keyMAC(secret, user, name)
}

func keyMAC(secret []byte, user, name string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("live-key v1/" + user + "/" + name))
	return strings.ToLower(base32.StdEncoding.EncodeToString(m.Sum(nil))[:keyMACLen])
}

// ParseKey checks a stream key of user and returns the stream name it
// grants; ok is false for a key that secret did not make for user.
func ParseKey(secret []byte, user, key string) (name string, ok bool) {
	if len(key) < keyMACLen+2 || key[len(key)-keyMACLen-1] != '-' {
		return "", false
	}
	name, mac := key[:len(key)-keyMACLen-1], key[len(key)-keyMACLen:]
	if CheckName(name) != nil {
		return "", false
	}
	if !hmac.Equal([]byte(mac), []byte(keyMAC(secret, user, name))) {
		return "", false
	}
	return name, true
}
