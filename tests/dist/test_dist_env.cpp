// The data-parallel process group from the environment, and the TCP rendezvous (rank 0 hands its bytes to every
// other rank), run with threads standing in for processes.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "gdn2/distributed.h"

namespace gdn2 {
namespace {

// Sets the given variables for the scope and clears every launcher variable before and after.
struct Env {
  static constexpr const char* kAll[] = {"WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
                                         "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK",
                                         "OMPI_COMM_WORLD_LOCAL_RANK", "PMI_SIZE", "PMI_RANK",
                                         "TORCHELASTIC_RUN_ID", "GDN2_RENDEZVOUS_PORT"};
  explicit Env(std::initializer_list<std::pair<const char*, const char*>> vars) {
    clear();
    for (const auto& [k, v] : vars) ::setenv(k, v, 1);
  }
  ~Env() { clear(); }
  static void clear() {
    for (const char* k : kAll) ::unsetenv(k);
  }
};

TEST(DistEnv, TorchrunVariables) {
  Env e({{"WORLD_SIZE", "4"}, {"RANK", "2"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "10.0.0.7"}, {"MASTER_PORT", "1234"}});
  const auto d = dist_env_from_environment();
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->world, 4);
  EXPECT_EQ(d->rank, 2);
  EXPECT_EQ(d->local_rank, 1);
  EXPECT_EQ(d->master_addr, "10.0.0.7");
  EXPECT_EQ(d->master_port, 1234);
}

TEST(DistEnv, RendezvousPortBesideTorchrunsStore) {
  {
    Env e({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_PORT", "29500"}, {"TORCHELASTIC_RUN_ID", "x"}});
    EXPECT_EQ(dist_env_from_environment()->master_port, 29501);
  }
  Env e({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"GDN2_RENDEZVOUS_PORT", "4000"}});
  EXPECT_EQ(dist_env_from_environment()->master_port, 4000);
}

TEST(DistEnv, MpirunVariablesAndDefaults) {
  Env e({{"OMPI_COMM_WORLD_SIZE", "2"}, {"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}});
  const auto d = dist_env_from_environment();
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->world, 2);
  EXPECT_EQ(d->rank, 1);
  EXPECT_EQ(d->local_rank, 1);
  EXPECT_EQ(d->master_addr, "127.0.0.1");
  EXPECT_EQ(d->master_port, 29500);
}

TEST(DistEnv, NoneOrMalformed) {
  {
    Env e({});
    EXPECT_FALSE(dist_env_from_environment().has_value());
  }
  {
    Env e({{"WORLD_SIZE", "2"}, {"RANK", "2"}});
    EXPECT_THROW(dist_env_from_environment(), ValueError);
  }
  {
    Env e({{"WORLD_SIZE", "two"}});
    EXPECT_THROW(dist_env_from_environment(), ValueError);
  }
  {
    Env e({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_PORT", "70000"}});
    EXPECT_THROW(dist_env_from_environment(), ValueError);
  }
}

TEST(Rendezvous, RankZeroBytesReachEveryRank) {
  const int world = 4;
  const int port = 20000 + static_cast<int>(::getpid() % 20000);
  std::string blob(128, '\0');
  for (size_t i = 0; i < blob.size(); ++i) blob[i] = static_cast<char>(i * 7 + 3);
  std::vector<std::string> got(world);
  std::vector<std::thread> ranks;
  for (int r = world - 1; r >= 0; --r)  // the others start first and wait for rank 0
    ranks.emplace_back([&, r] {
      DistEnv env;
      env.world = world;
      env.rank = r;
      env.master_port = port;
      got[static_cast<size_t>(r)] = rendezvous_broadcast(env, r == 0 ? blob : std::string(), 30.0);
    });
  for (std::thread& t : ranks) t.join();
  for (int r = 0; r < world; ++r) EXPECT_EQ(got[static_cast<size_t>(r)], blob) << "rank " << r;
}

TEST(Rendezvous, TimesOutWithoutRankZero) {
  DistEnv env;
  env.world = 2;
  env.rank = 1;
  env.master_port = 20000 + static_cast<int>((::getpid() + 7919) % 20000);
  EXPECT_THROW(rendezvous_broadcast(env, "", 0.5), IoError);
}

#ifndef GDN2_WITH_NCCL
TEST(DataParallel, RefusedWithoutNccl) {
  DistEnv env;
  EXPECT_THROW(DataParallel dp(env), UnsupportedError);
}
#endif

}  // namespace
}  // namespace gdn2
