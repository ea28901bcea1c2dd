// The process group from the launcher's environment (torchrun, mpirun) and the TCP rendezvous that hands rank 0's
// bytes (NCCL's unique id) to the other ranks.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "gdn2/distributed.h"

namespace gdn2 {

namespace {

std::optional<std::string> env_value(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

int env_int(const char* name, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text.c_str(), &end, 10);
  GDN2_CHECK(errno == 0 && end != text.c_str() && *end == '\0' && v >= 0 && v <= (1 << 30), ValueError, "environment ",
             name, "='", text, "' is not a non-negative integer");
  return static_cast<int>(v);
}

// The first of the named variables that is set, as an integer.
std::optional<int> first_int(std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (auto v = env_value(n)) return env_int(n, *v);
  return std::nullopt;
}

// Closes a socket when it goes out of scope.
struct Socket {
  int fd = -1;
  explicit Socket(int f) : fd(f) {}
  ~Socket() {
    if (fd >= 0) ::close(fd);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
};

void send_all(int fd, const void* p, size_t n) {
  const auto* b = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t k = ::send(fd, b, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    GDN2_CHECK(k > 0, IoError, "rendezvous: send failed: ", std::strerror(errno));
    b += k;
    n -= static_cast<size_t>(k);
  }
}

void recv_all(int fd, void* p, size_t n) {
  auto* b = static_cast<char*>(p);
  while (n > 0) {
    const ssize_t k = ::recv(fd, b, n, 0);
    if (k < 0 && errno == EINTR) continue;
    GDN2_CHECK(k > 0, IoError, "rendezvous: connection closed before all bytes arrived");
    b += k;
    n -= static_cast<size_t>(k);
  }
}

void set_timeout(int fd, double seconds) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(seconds);
  tv.tv_usec = static_cast<suseconds_t>((seconds - static_cast<double>(tv.tv_sec)) * 1e6);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

}  // namespace

std::optional<DistEnv> dist_env_from_environment() {
  const std::optional<int> world = first_int({"WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"});
  if (!world) return std::nullopt;
  DistEnv e;
  e.world = *world;
  e.rank = first_int({"RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK"}).value_or(0);
  e.local_rank = first_int({"LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID"}).value_or(e.rank);
  if (auto a = env_value("MASTER_ADDR")) e.master_addr = *a;
  if (auto p = env_value("MASTER_PORT")) e.master_port = env_int("MASTER_PORT", *p);
  // Under torchrun its own store listens on MASTER_PORT: the rendezvous takes the next port.
  if (env_value("TORCHELASTIC_RUN_ID")) ++e.master_port;
  if (auto p = env_value("GDN2_RENDEZVOUS_PORT")) e.master_port = env_int("GDN2_RENDEZVOUS_PORT", *p);
  GDN2_CHECK(e.world >= 1 && e.rank < e.world, ValueError, "environment: rank ", e.rank, " is outside a world of ",
             e.world);
  GDN2_CHECK(e.master_port >= 1 && e.master_port <= 65535, ValueError, "environment: MASTER_PORT ", e.master_port,
             " is not a TCP port");
  return e;
}

std::string rendezvous_broadcast(const DistEnv& env, const std::string& blob, double timeout_s) {
  if (env.world == 1) return blob;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  if (env.rank == 0) {
    Socket s(::socket(AF_INET, SOCK_STREAM, 0));
    GDN2_CHECK(s.fd >= 0, IoError, "rendezvous: socket: ", std::strerror(errno));
    const int one = 1;
    ::setsockopt(s.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons(static_cast<uint16_t>(env.master_port));
    GDN2_CHECK(::bind(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0, IoError, "rendezvous: cannot listen on port ",
               env.master_port, ": ", std::strerror(errno));
    GDN2_CHECK(::listen(s.fd, env.world) == 0, IoError, "rendezvous: listen: ", std::strerror(errno));
    set_timeout(s.fd, timeout_s);
    const uint64_t n = blob.size();
    for (int served = 1; served < env.world; ++served) {
      Socket c(::accept(s.fd, nullptr, nullptr));
      GDN2_CHECK(c.fd >= 0, IoError, "rendezvous: only ", served - 1, " of ", env.world - 1,
                 " ranks connected before the timeout (", std::strerror(errno), ")");
      set_timeout(c.fd, timeout_s);
      send_all(c.fd, &n, sizeof n);
      send_all(c.fd, blob.data(), blob.size());
    }
    return blob;
  }
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(env.master_addr.c_str(), std::to_string(env.master_port).c_str(), &hints, &res);
  GDN2_CHECK(rc == 0 && res != nullptr, IoError, "rendezvous: cannot resolve MASTER_ADDR '", env.master_addr, "': ",
             ::gai_strerror(rc));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> keep(res, ::freeaddrinfo);
  while (true) {
    Socket c(::socket(AF_INET, SOCK_STREAM, 0));
    GDN2_CHECK(c.fd >= 0, IoError, "rendezvous: socket: ", std::strerror(errno));
    if (::connect(c.fd, res->ai_addr, res->ai_addrlen) == 0) {
      set_timeout(c.fd, timeout_s);
      uint64_t n = 0;
      recv_all(c.fd, &n, sizeof n);
      GDN2_CHECK(n <= (1u << 20), IoError, "rendezvous: rank 0 announced ", n, " bytes");
      std::string out(n, '\0');
      recv_all(c.fd, out.data(), n);
      return out;
    }
    GDN2_CHECK(std::chrono::steady_clock::now() < deadline, IoError, "rendezvous: rank 0 at ", env.master_addr, ":",
               env.master_port, " did not answer within ", timeout_s, " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace gdn2
