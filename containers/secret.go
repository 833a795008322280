package containers

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"github.com/imaged/imaged"
)

// sealedPrefix marks a password encrypted by secretBox. Passwords without
// it were stored before a key was configured and are used as they are.
const sealedPrefix = "aesgcm:v1:"

// secretBox encrypts registry passwords at rest with AES-256-GCM. The key
// is SHA-256 of the configured secret, so any length of secret works.
type secretBox struct{ aead cipher.AEAD }

func newSecretBox(secret []byte) *secretBox {
	k := sha256.Sum256(secret)
	block, err := aes.NewCipher(k[:])
	if err != nil {
		panic(err) // a 32-byte key cannot be refused
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return &secretBox{aead: aead}
}

// seal encrypts a password; "" stays "" (no password).
func (b *secretBox) seal(plain string) string {
	if b == nil || plain == "" {
		return plain
	}
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand does not fail
	}
	out := b.aead.Seal(nonce, nonce, []byte(plain), []byte("registry-password"))
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(out)
}

// open decrypts a stored password.
func (b *secretBox) open(stored string) (string, error) {
	rest, ok := strings.CutPrefix(stored, sealedPrefix)
	if !ok {
		return stored, nil
	}
	if b == nil {
		return "", imaged.Errorf(imaged.EUNAVAILABLE, "the registry password is encrypted but no secret key is configured")
	}
	raw, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil || len(raw) < b.aead.NonceSize() {
		return "", imaged.Errorf(imaged.EUNAVAILABLE, "the stored registry password is corrupt")
	}
	n := b.aead.NonceSize()
	plain, err := b.aead.Open(nil, raw[:n], raw[n:], []byte("registry-password"))
	if err != nil {
		return "", imaged.Errorf(imaged.EUNAVAILABLE, "the stored registry password cannot be decrypted with the configured secret key")
	}
	return string(plain), nil
}
