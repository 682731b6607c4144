-- The rig's "old" users database (MariaDB), as users-db-mysql8 holds it. The test creates these
-- tables in a fresh database per rehearsal and its app writer fills them.
create table users (
  id bigint not null auto_increment primary key,
  email varchar(255) not null,
  name varchar(100) not null,
  active tinyint(1) not null default 1,
  created_at datetime(6) not null,
  updated_at datetime(6) not null,
  unique key users_email (email)
);
create table user_profiles (
  id bigint not null auto_increment primary key,
  user_id bigint not null,
  bio text null,
  updated_at datetime(6) not null,
  key user_profiles_user_id (user_id)
);
create table user_settings (
  id bigint not null auto_increment primary key,
  user_id bigint not null,
  name varchar(64) not null,
  value varchar(255) not null,
  updated_at datetime(6) not null,
  key user_settings_user_id (user_id)
);
