package playback

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Content tokens name the content of a session's timeline (an asset or a
// clip of one) in URLs shared by every viewer of it: /c/{token}/... They
// are opaque (the user and asset are encrypted, with AES-GCM under a key
// derived from the deployment's secret) and deterministic (the nonce is
// derived from the plaintext), so that every viewer, on every node, gets
// the same URL, which HTTP caches then keep once. A token expires at the
// end of the hour after the one it was made in, so URLs change once an
// hour, like signed links.

// errToken is the error for a token that is malformed, forged or expired.
var errToken = errors.New("invalid or expired content token")

// tokenLife is the granularity of token expiry.
const tokenLife = time.Hour

// sealer makes and opens content tokens.
type sealer struct {
	aead  cipher.AEAD
	nonce []byte // key of the nonce derivation
}

func newSealer(secret []byte) (*sealer, error) {
	if len(secret) < 16 {
		return nil, fmt.Errorf("playback: the secret has %d bytes, fewer than 16", len(secret))
	}
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	block, err := aes.NewCipher(derive("jitstream playback content token key v1"))
	if err != nil {
		return nil, fmt.Errorf("playback: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("playback: %w", err)
	}
	return &sealer{aead: aead, nonce: derive("jitstream playback content token nonce v1")}, nil
}

// seal makes the token of the asset or clip name of user, valid until the
// end of the hour after now's.
func (s *sealer) seal(user, name string, now time.Time) string {
	exp := now.Truncate(tokenLife).Add(2 * tokenLife)
	plain := make([]byte, 8, 8+len(user)+1+len(name))
	binary.BigEndian.PutUint64(plain, uint64(exp.Unix()))
	plain = append(append(append(plain, user...), 0), name...)
	m := hmac.New(sha256.New, s.nonce)
	m.Write(plain)
	nonce := m.Sum(nil)[:s.aead.NonceSize()]
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, nil))
}

// open returns the user and asset or clip name of a token made by seal,
// if it is authentic and not expired at now.
func (s *sealer) open(tok string, now time.Time) (user, name string, err error) {
	if len(tok) > 512 {
		return "", "", errToken
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	ns := s.aead.NonceSize()
	if err != nil || len(b) < ns+s.aead.Overhead()+8 {
		return "", "", errToken
	}
	plain, err := s.aead.Open(nil, b[:ns], b[ns:], nil)
	if err != nil || len(plain) < 8 {
		return "", "", errToken
	}
	if exp := time.Unix(int64(binary.BigEndian.Uint64(plain)), 0); !now.Before(exp) {
		return "", "", errToken
	}
	user, name, ok := strings.Cut(string(plain[8:]), "\x00")
	if !ok {
		return "", "", errToken
	}
	return user, name, nil
}
