// Package history is the cryptography of the history that follows a person
// to a new device (docs/multidevice.md section 3). It is pure: no network,
// no store.
//
//   - A [Keyring] holds the account's history-id key and its epochs; the
//     newest epoch is current. Devices write with the current epoch and
//     read with all. [NewKeyring] at registration, [Keyring.Rotate] at a
//     device removal, [Keyring.Add] for an epoch from an own device
//     ([EpochFromContent], [Epoch.Content] convert to and from the content
//     message's control part), [Keyring.Marshal] and [ParseKeyring] for the
//     store.
//   - [Keyring.Seal] makes the [RecordID] and blob of a message's
//     [Record]; [Keyring.Open] opens one (ErrRecord, or ErrUnknownEpoch).
//   - A [RecoveryCode] ([NewRecoveryCode], [ParseRecoveryCode]) seals the
//     [Account] (identity, keyring) into the recovery blob
//     ([SealRecovery], [OpenRecovery]: ErrRecovery).
//
// Codes are written as link codes are (package secretcode); every JSON
// plaintext is decoded strictly (package strictjson).
package history
