package session

import "errors"

func isDuplicate(err error) bool { return errors.Is(err, ErrDuplicate) && errors.Is(err, ErrDecrypt) }
