// Package history is the cryptography of the history that follows a person
// to a new device (docs/multidevice.md section 3). It is pure: no network,
// no store.
//
//   - A [Keyring] holds the account's history-id key and its epochs; the
//     newest epoch is current. Devices write with the current epoch and
//     read with all.
package history
