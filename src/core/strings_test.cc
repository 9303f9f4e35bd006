#include "core/strings.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(RedactConnectionTest, UrlPassword) {
  EXPECT_EQ(RedactConnection("postgresql://ann:s3cr%40t@db.local:5432/x"), "postgresql://ann:***@db.local:5432/x");
  EXPECT_EQ(RedactConnection("postgres://ann:p@ss@127.0.0.1/x?sslmode=disable"), "postgres://ann:***@127.0.0.1/x?sslmode=disable");
}

TEST(RedactConnectionTest, NoPasswordUnchanged) {
  EXPECT_EQ(RedactConnection("postgresql://ann@db/x"), "postgresql://ann@db/x");
  EXPECT_EQ(RedactConnection("host=/tmp dbname=x user=ann"), "host=/tmp dbname=x user=ann");
  EXPECT_EQ(RedactConnection("data/app.db"), "data/app.db");
  EXPECT_EQ(RedactConnection("postgresql://db/x?user=ann"), "postgresql://db/x?user=ann");
}

TEST(RedactConnectionTest, KeyValueAndQueryParameter) {
  EXPECT_EQ(RedactConnection("host=db password=hunter2 dbname=x"), "host=db password=*** dbname=x");
  EXPECT_EQ(RedactConnection("password='a b\\'c' host=db"), "password='***' host=db");
  EXPECT_EQ(RedactConnection("postgresql://db/x?user=ann&password=hunter2&sslmode=off"),
            "postgresql://db/x?user=ann&password=***&sslmode=off");
  EXPECT_EQ(RedactConnection("host=db mypassword=x"), "host=db mypassword=x");
}

TEST(RedactPasswordTest, ScrubsEchoedSecret) {
  EXPECT_EQ(RedactPassword("could not connect with hunter2 to db", "host=db password=hunter2"),
            "could not connect with *** to db");
  EXPECT_EQ(RedactPassword("nothing secret", "postgresql://ann@db/x"), "nothing secret");
}

}  // namespace
}  // namespace sluice
