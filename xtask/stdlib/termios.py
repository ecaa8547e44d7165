"""Terminal control for the eryx sandbox, which has no terminal device.

The WASI build of CPython has no `termios` (WASI has no terminal control),
so `import tty`, and libraries that import `termios` at the top (prompt
input, key readers), failed with `ModuleNotFoundError`. Here the module
exists with Linux's constants (so `tty.cfmakeraw` and friends, which only
edit attribute lists, work) and every call on a descriptor fails as it
does on Linux for a descriptor that is not a terminal: `termios.error`
with `ENOTTY` ("Inappropriate ioctl for device"), or `EBADF` for a closed
one. Programs that handle a non-terminal stdin (pipes, CI) handle this.
The guest cannot switch the host's terminal to raw mode, so a descriptor
that `isatty()` reports as a terminal (stdin of an interactive `eryx`)
is refused the same way.
"""

import errno as _errno
import os as _os


class error(Exception):
    """A terminal control call failed: `args` is `(errno, message)`."""



B0 = 0x0
B1000000 = 0x1008
B110 = 0x3
B115200 = 0x1002
B1152000 = 0x1009
B1200 = 0x9
B134 = 0x4
B150 = 0x5
B1500000 = 0x100a
B1800 = 0xa
B19200 = 0xe
B200 = 0x6
B2000000 = 0x100b
B230400 = 0x1003
B2400 = 0xb
B2500000 = 0x100c
B300 = 0x7
B3000000 = 0x100d
B3500000 = 0x100e
B38400 = 0xf
B4000000 = 0x100f
B460800 = 0x1004
B4800 = 0xc
B50 = 0x1
B500000 = 0x1005
B57600 = 0x1001
B576000 = 0x1006
B600 = 0x8
B75 = 0x2
B921600 = 0x1007
B9600 = 0xd
BRKINT = 0x2
BS0 = 0x0
BS1 = 0x2000
BSDLY = 0x2000
CBAUD = 0x100f
CBAUDEX = 0x1000
CDSUSP = 0x19
CEOF = 0x4
CEOL = 0x0
CEOT = 0x4
CERASE = 0x7f
CFLUSH = 0xf
CIBAUD = 0x100f0000
CINTR = 0x3
CKILL = 0x15
CLNEXT = 0x16
CLOCAL = 0x800
CQUIT = 0x1c
CR0 = 0x0
CR1 = 0x200
CR2 = 0x400
CR3 = 0x600
CRDLY = 0x600
CREAD = 0x80
CRPRNT = 0x12
CRTSCTS = 0x80000000
CS5 = 0x0
CS6 = 0x10
CS7 = 0x20
CS8 = 0x30
CSIZE = 0x30
CSTART = 0x11
CSTOP = 0x13
CSTOPB = 0x40
CSUSP = 0x1a
CWERASE = 0x17
ECHO = 0x8
ECHOCTL = 0x200
ECHOE = 0x10
ECHOK = 0x20
ECHOKE = 0x800
ECHONL = 0x40
ECHOPRT = 0x400
EXTA = 0xe
EXTB = 0xf
FF0 = 0x0
FF1 = 0x8000
FFDLY = 0x8000
FIOASYNC = 0x5452
FIOCLEX = 0x5451
FIONBIO = 0x5421
FIONCLEX = 0x5450
FIONREAD = 0x541b
FLUSHO = 0x1000
HUPCL = 0x400
ICANON = 0x2
ICRNL = 0x100
IEXTEN = 0x8000
IGNBRK = 0x1
IGNCR = 0x80
IGNPAR = 0x4
IMAXBEL = 0x2000
INLCR = 0x40
INPCK = 0x10
IOCSIZE_MASK = 0x3fff0000
IOCSIZE_SHIFT = 0x10
ISIG = 0x1
ISTRIP = 0x20
IUCLC = 0x200
IXANY = 0x800
IXOFF = 0x1000
IXON = 0x400
NCC = 0x8
NCCS = 0x20
NL0 = 0x0
NL1 = 0x100
NLDLY = 0x100
NOFLSH = 0x80
N_MOUSE = 0x2
N_PPP = 0x3
N_SLIP = 0x1
N_STRIP = 0x4
N_TTY = 0x0
OCRNL = 0x8
OFDEL = 0x80
OFILL = 0x40
OLCUC = 0x2
ONLCR = 0x4
ONLRET = 0x20
ONOCR = 0x10
OPOST = 0x1
PARENB = 0x100
PARMRK = 0x8
PARODD = 0x200
PENDIN = 0x4000
TAB0 = 0x0
TAB1 = 0x800
TAB2 = 0x1000
TAB3 = 0x1800
TABDLY = 0x1800
TCFLSH = 0x540b
TCGETA = 0x5405
TCGETS = 0x5401
TCIFLUSH = 0x0
TCIOFF = 0x2
TCIOFLUSH = 0x2
TCION = 0x3
TCOFLUSH = 0x1
TCOOFF = 0x0
TCOON = 0x1
TCSADRAIN = 0x1
TCSAFLUSH = 0x2
TCSANOW = 0x0
TCSBRK = 0x5409
TCSBRKP = 0x5425
TCSETA = 0x5406
TCSETAF = 0x5408
TCSETAW = 0x5407
TCSETS = 0x5402
TCSETSF = 0x5404
TCSETSW = 0x5403
TCXONC = 0x540a
TIOCCONS = 0x541d
TIOCEXCL = 0x540c
TIOCGETD = 0x5424
TIOCGICOUNT = 0x545d
TIOCGLCKTRMIOS = 0x5456
TIOCGPGRP = 0x540f
TIOCGSERIAL = 0x541e
TIOCGSOFTCAR = 0x5419
TIOCGWINSZ = 0x5413
TIOCINQ = 0x541b
TIOCLINUX = 0x541c
TIOCMBIC = 0x5417
TIOCMBIS = 0x5416
TIOCMGET = 0x5415
TIOCMIWAIT = 0x545c
TIOCMSET = 0x5418
TIOCM_CAR = 0x40
TIOCM_CD = 0x40
TIOCM_CTS = 0x20
TIOCM_DSR = 0x100
TIOCM_DTR = 0x2
TIOCM_LE = 0x1
TIOCM_RI = 0x80
TIOCM_RNG = 0x80
TIOCM_RTS = 0x4
TIOCM_SR = 0x10
TIOCM_ST = 0x8
TIOCNOTTY = 0x5422
TIOCNXCL = 0x540d
TIOCOUTQ = 0x5411
TIOCPKT = 0x5420
TIOCPKT_DATA = 0x0
TIOCPKT_DOSTOP = 0x20
TIOCPKT_FLUSHREAD = 0x1
TIOCPKT_FLUSHWRITE = 0x2
TIOCPKT_NOSTOP = 0x10
TIOCPKT_START = 0x8
TIOCPKT_STOP = 0x4
TIOCSCTTY = 0x540e
TIOCSERCONFIG = 0x5453
TIOCSERGETLSR = 0x5459
TIOCSERGETMULTI = 0x545a
TIOCSERGSTRUCT = 0x5458
TIOCSERGWILD = 0x5454
TIOCSERSETMULTI = 0x545b
TIOCSERSWILD = 0x5455
TIOCSER_TEMT = 0x1
TIOCSETD = 0x5423
TIOCSLCKTRMIOS = 0x5457
TIOCSPGRP = 0x5410
TIOCSSERIAL = 0x541f
TIOCSSOFTCAR = 0x541a
TIOCSTI = 0x5412
TIOCSWINSZ = 0x5414
TOSTOP = 0x100
VDISCARD = 0xd
VEOF = 0x4
VEOL = 0xb
VEOL2 = 0x10
VERASE = 0x2
VINTR = 0x0
VKILL = 0x3
VLNEXT = 0xf
VMIN = 0x6
VQUIT = 0x1
VREPRINT = 0xc
VSTART = 0x8
VSTOP = 0x9
VSUSP = 0xa
VSWTC = 0x7
VSWTCH = 0x7
VT0 = 0x0
VT1 = 0x4000
VTDLY = 0x4000
VTIME = 0x5
VWERASE = 0xe
XCASE = 0x4
XTABS = 0x1800


def _fail(fd):
    if not isinstance(fd, int):
        fileno = getattr(fd, "fileno", None)
        if fileno is None:
            raise TypeError(
                f"argument must be an int, or have a fileno() method, not {type(fd).__name__}"
            )
        fd = fileno()
        if not isinstance(fd, int):
            raise TypeError("fileno() returned a non-integer")
    if fd < 0:
        raise ValueError(f"file descriptor cannot be a negative integer ({fd})")
    try:
        _os.fstat(fd)
    except OSError:
        raise error(_errno.EBADF, _os.strerror(_errno.EBADF)) from None
    raise error(_errno.ENOTTY, _os.strerror(_errno.ENOTTY))


def tcgetattr(fd, /):
    """Get the tty attributes for `fd` (never a terminal here: `error`)."""
    _fail(fd)


def tcsetattr(fd, when, attributes, /):
    """Set the tty attributes for `fd` (never a terminal here: `error`)."""
    if not isinstance(attributes, list) or len(attributes) != 7:
        raise TypeError("tcsetattr, arg 3: must be 7 element list")
    _fail(fd)


def tcsendbreak(fd, duration, /):
    """Send a break on `fd` (never a terminal here: `error`)."""
    _fail(fd)


def tcdrain(fd, /):
    """Wait until all output to `fd` has been sent (never a terminal here: `error`)."""
    _fail(fd)


def tcflush(fd, queue, /):
    """Discard queued data on `fd` (never a terminal here: `error`)."""
    _fail(fd)


def tcflow(fd, action, /):
    """Suspend or resume input or output on `fd` (never a terminal here: `error`)."""
    _fail(fd)


def tcgetwinsize(fd, /):
    """Get the window size of `fd` (never a terminal here: `error`)."""
    _fail(fd)


def tcsetwinsize(fd, winsize, /):
    """Set the window size of `fd` (never a terminal here: `error`)."""
    _fail(fd)
