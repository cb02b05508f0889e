#include "hw/termios_transport.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "core/error.hpp"

namespace opx::hw {
namespace {

speed_t baud_constant(int baud) {
  switch (baud) {
    case 1200: return B1200;
    case 2400: return B2400;
    case 4800: return B4800;
    case 9600: return B9600;
    case 19200: return B19200;
    case 38400: return B38400;
    case 57600: return B57600;
    case 115200: return B115200;
    case 230400: return B230400;
    case 460800: return B460800;
    case 921600: return B921600;
    default: return 0;
  }
}

}  // namespace

std::string SerialSettings::describe() const {
  return fmt::format("{} {}{}{}{}", baud, data_bits, parity, stop_bits,
                     hardware_flow ? " rtscts" : software_flow ? " xonxoff" : "");
}

TermiosTransport::TermiosTransport(std::string path, const SerialSettings& s) : path_(std::move(path)), settings_(s) {
  const speed_t speed = baud_constant(s.baud);
  if (speed == 0)
    throw usage_error("invalid serial settings", path_,
                      fmt::format("baud rate {} is not one of 1200 ... 921600", s.baud));
  if (s.data_bits < 5 || s.data_bits > 8 || (s.parity != 'N' && s.parity != 'E' && s.parity != 'O') ||
      (s.stop_bits != 1 && s.stop_bits != 2))
    throw usage_error("invalid serial settings", path_, s.describe());
  std::error_code ec;
  if (!std::filesystem::exists(path_, ec))
    throw input_missing("cannot open device", path_, "no such port (is the device plugged in?)");
  fd_ = ::open(path_.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) throw Error(ExitCode::unavailable, "cannot open device", path_, std::strerror(errno));
  // Two locks: flock for programs that honour it, TIOCEXCL so that even a
  // plain open() of the tty by another program fails while we hold it.
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd_);
    fd_ = -1;
    throw Error(ExitCode::unavailable, "cannot open device", path_,
                err == EWOULDBLOCK ? "in use by another program" : std::strerror(err));
  }
  ::ioctl(fd_, TIOCEXCL);
  termios tio{};
  if (::tcgetattr(fd_, &tio) != 0) {
    int err = errno;
    ::close(fd_);
    fd_ = -1;
    throw Error(ExitCode::unavailable, "cannot open device", path_,
                fmt::format("not a serial port: {}", std::strerror(err)));
  }
  ::cfmakeraw(&tio);
  tio.c_cflag |= CLOCAL | CREAD;
  tio.c_cflag &= ~static_cast<tcflag_t>(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS);
  tio.c_cflag |= s.data_bits == 5 ? CS5 : s.data_bits == 6 ? CS6 : s.data_bits == 7 ? CS7 : CS8;
  if (s.parity != 'N') tio.c_cflag |= PARENB | (s.parity == 'O' ? PARODD : 0);
  if (s.stop_bits == 2) tio.c_cflag |= CSTOPB;
  if (s.hardware_flow) tio.c_cflag |= CRTSCTS;
  if (s.software_flow) tio.c_iflag |= IXON | IXOFF;
  tio.c_cc[VMIN] = 0;
  tio.c_cc[VTIME] = 0;
  ::cfsetispeed(&tio, speed);
  ::cfsetospeed(&tio, speed);
  if (::tcsetattr(fd_, TCSANOW, &tio) != 0) {
    int err = errno;
    ::close(fd_);
    fd_ = -1;
    throw Error(ExitCode::unavailable, "cannot configure device", path_, std::strerror(err));
  }
  ::tcflush(fd_, TCIOFLUSH);
}

TermiosTransport::~TermiosTransport() {
  if (fd_ >= 0) {
    ::ioctl(fd_, TIOCNXCL);
    ::close(fd_);  // also releases the flock
  }
}

std::size_t TermiosTransport::read(std::uint8_t* data, std::size_t size, Milliseconds timeout) {
  if (size == 0) return 0;
  pollfd p{fd_, POLLIN, 0};
  int rc;
  do {
    rc = ::poll(&p, 1, static_cast<int>(std::max<long long>(0, timeout.count())));
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) throw io_error("cannot read from device", describe(), std::strerror(errno));
  if (rc == 0) return 0;
  if (p.revents & (POLLERR | POLLNVAL))
    throw Error(ExitCode::unavailable, "device went away", describe(), "the port reported an error");
  ssize_t n = ::read(fd_, data, size);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return 0;
    throw Error(ExitCode::unavailable, "cannot read from device", describe(), std::strerror(errno));
  }
  if (n == 0 && (p.revents & POLLHUP))
    throw Error(ExitCode::unavailable, "device went away", describe(), "the other end closed the line");
  return static_cast<std::size_t>(n);
}

void TermiosTransport::write(const std::uint8_t* data, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd_, data + done, size - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        pollfd p{fd_, POLLOUT, 0};
        if (::poll(&p, 1, 1000) <= 0)
          throw Error(ExitCode::temp_fail, "cannot write to device", describe(), "output blocked for 1 s");
        continue;
      }
      throw Error(ExitCode::unavailable, "cannot write to device", describe(), std::strerror(errno));
    }
    done += static_cast<std::size_t>(n);
  }
}

void TermiosTransport::flush() { ::tcflush(fd_, TCIFLUSH); }

void TermiosTransport::drain() { ::tcdrain(fd_); }

std::string TermiosTransport::describe() const { return fmt::format("{} ({})", path_, settings_.describe()); }

}  // namespace opx::hw
