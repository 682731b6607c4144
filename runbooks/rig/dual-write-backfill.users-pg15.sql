-- The rig's reviewed DDL for new (runbooks/dual-write-backfill.toml, var schema_file), matching
-- dual-write-backfill.users-mysql.sql per docs/mysql.md. Schema-qualified: the rig's role is
-- named `ferry`, like ferry's checkpoint schema (docs/decisions.md). No id defaults: ids come
-- from old until the `new-ids` step gives new its sequences.
create table public.users (
  id bigint not null primary key,
  email varchar(255) not null,
  name varchar(100) not null,
  active boolean not null default true,
  created_at timestamp(6) not null,
  updated_at timestamp(6) not null,
  constraint users_email unique (email)
);
create table public.user_profiles (
  id bigint not null primary key,
  user_id bigint not null,
  bio text null,
  updated_at timestamp(6) not null
);
create index user_profiles_user_id on public.user_profiles (user_id);
create table public.user_settings (
  id bigint not null primary key,
  user_id bigint not null,
  name varchar(64) not null,
  value varchar(255) not null,
  updated_at timestamp(6) not null
);
create index user_settings_user_id on public.user_settings (user_id);
