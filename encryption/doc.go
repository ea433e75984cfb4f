// Package encryption encrypts and decrypts model layers the way
// github.com/containers/ocicrypt does for container images, so that a model
// pushed here is read by ocicrypt-based tools (containerd's imgcrypt,
// skopeo, CRI-O, image-rs) and the other way round.
//
// A layer is encrypted with a fresh random AES-256-CTR key and an
// HMAC-SHA256 over the ciphertext (ocicrypt's AES_256_CTR_HMAC_SHA256).
// The key, the nonce and the plaintext digest (ocicrypt's private layer
// options) are wrapped to each recipient's public key in one JWE
// (annotation org.opencontainers.image.enc.keys.jwe); the cipher and the
// HMAC (the public options) go in org.opencontainers.image.enc.pubopts.
// The layer's media type gets the standard "+encrypted" suffix and its
// digest becomes the ciphertext's.
//
// Only the JWE key wrapping is spoken (RSA-OAEP and ECDH-ES+A256KW, as
// ocicrypt's jwe keywrapper does); PGP, PKCS#7, PKCS#11 and keyprovider
// wrapping are not. The package uses ocicrypt's blockcipher and jwe
// keywrap packages directly, not ocicrypt's top-level package, whose
// init registers every key wrapper in process-wide maps and reads a
// keyprovider configuration from the environment.
//
// Layer keys (LayerKey) are secrets: they never appear in an error or in
// anything the package prints, and their String and LogValue methods
// redact them.
package encryption
