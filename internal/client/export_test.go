package client

import "github.com/hushmsg/hush/internal/client/store"

// Store gives the tests the client's store; the front ends have the
// Client's own calls.
func (c *Client) Store() *store.Store { return c.st }

// Explain is explain, for its test.
var Explain = explain

// ReceiptsSent is how many receipts c sent that the server accepted.
func (c *Client) ReceiptsSent() int64 { return c.receiptsSent.Load() }
