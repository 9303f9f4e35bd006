#include "source/duckdb_util.h"

#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "core/hash.h"

namespace sluice {
namespace {

// DuckDB messages start with "<Kind> Error: " and may go on over several
// lines (the query with a caret): the first line, without the prefix.
std::string FirstLine(const char* message) {
  std::string_view text = message != nullptr ? message : "unknown DuckDB error";
  text = text.substr(0, text.find('\n'));
  const size_t prefix = text.find("Error: ");
  if (prefix != std::string_view::npos && prefix < 40) text.remove_prefix(prefix + 7);
  return std::string(text);
}

// `text` between `quote`s, inner ones doubled.
std::string Quote(std::string_view text, char quote) {
  std::string out(1, quote);
  for (const char c : text) {
    if (c == quote) out.push_back(quote);
    out.push_back(c);
  }
  out.push_back(quote);
  return out;
}

// The bucket of each row of a BIGINT, FLOAT, DOUBLE, BOOLEAN or VARCHAR
// vector; the C API hands scalar functions flat vectors.
void SluiceBucket(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output) {
  const size_t rows = duckdb_data_chunk_get_size(input);
  duckdb_vector values = duckdb_data_chunk_get_vector(input, 0);
  duckdb_vector buckets = duckdb_data_chunk_get_vector(input, 1);
  duckdb_logical_type type = duckdb_vector_get_column_type(values);
  const duckdb_type type_id = duckdb_get_type_id(type);
  duckdb_destroy_logical_type(&type);
  uint64_t* valid = duckdb_vector_get_validity(values);
  uint64_t* buckets_valid = duckdb_vector_get_validity(buckets);
  const auto* bucket_counts = static_cast<const int64_t*>(duckdb_vector_get_data(buckets));
  void* data = duckdb_vector_get_data(values);
  auto* out = static_cast<int64_t*>(duckdb_vector_get_data(output));
  for (size_t row = 0; row < rows; ++row) {
    if (!duckdb_validity_row_is_valid(buckets_valid, row) || bucket_counts[row] <= 0) {
      duckdb_scalar_function_set_error(info, "sluice_bucket: buckets must be a positive number");
      return;
    }
    uint64_t h = kHashSeed;
    if (!duckdb_validity_row_is_valid(valid, row)) {
      h = HashKeyNull(h);
    } else {
      switch (type_id) {
        case DUCKDB_TYPE_BIGINT: h = HashKeyInt(static_cast<const int64_t*>(data)[row], h); break;
        case DUCKDB_TYPE_FLOAT: h = HashKeyDouble(static_cast<const float*>(data)[row], h); break;
        case DUCKDB_TYPE_DOUBLE: h = HashKeyDouble(static_cast<const double*>(data)[row], h); break;
        case DUCKDB_TYPE_BOOLEAN: h = HashKeyBool(static_cast<const bool*>(data)[row], h); break;
        case DUCKDB_TYPE_VARCHAR: h = HashKeyString(DuckString(static_cast<duckdb_string_t*>(data) + row), h); break;
        default:
          duckdb_scalar_function_set_error(info, "sluice_bucket: unsupported value type");
          return;
      }
    }
    out[row] = static_cast<int64_t>(MixHash(h) % static_cast<uint64_t>(bucket_counts[row]));
  }
}

// The live DuckChunkLists by id.
struct ChunkLists {
  std::mutex mu;
  int64_t next_id = 1;                                        // guarded by mu
  std::unordered_map<int64_t, const DuckChunkList*> by_id;  // guarded by mu
};
ChunkLists& LiveChunkLists() {
  static auto* const lists = new ChunkLists;  // never destroyed: lists may outlive static destruction
  return *lists;
}

// sluice_chunks(id): the table function of DuckChunkList. Bind finds the list
// and declares its columns; each call hands out its next chunk.
void ChunksBind(duckdb_bind_info info) {
  duckdb_value id = duckdb_bind_get_parameter(info, 0);
  const DuckChunkList* list = DuckChunkList::Find(duckdb_get_int64(id));
  duckdb_destroy_value(&id);
  if (list == nullptr) {
    duckdb_bind_set_error(info, "sluice_chunks: no such chunk list");
    return;
  }
  for (size_t col = 0; col < list->names().size(); ++col) {
    duckdb_bind_add_result_column(info, list->names()[col].c_str(), list->logical_types()[col]);
  }
  duckdb_bind_set_bind_data(info, const_cast<DuckChunkList*>(list), nullptr);
}

void ChunksInit(duckdb_init_info info) {
  duckdb_init_set_init_data(info, new size_t(0), [](void* next) { delete static_cast<size_t*>(next); });
  duckdb_init_set_max_threads(info, 1);
}

void ChunksScan(duckdb_function_info info, duckdb_data_chunk output) {
  const auto* list = static_cast<const DuckChunkList*>(duckdb_function_get_bind_data(info));
  size_t& next = *static_cast<size_t*>(duckdb_function_get_init_data(info));
  if (next == list->chunks().size()) {
    duckdb_data_chunk_set_size(output, 0);
    return;
  }
  duckdb_data_chunk chunk = list->chunks()[next++];
  for (size_t col = 0; col < list->names().size(); ++col) {
    duckdb_vector_reference_vector(duckdb_data_chunk_get_vector(output, col), duckdb_data_chunk_get_vector(chunk, col));
  }
  duckdb_data_chunk_set_size(output, duckdb_data_chunk_get_size(chunk));
}

Status RegisterChunksFunction(duckdb_connection con) {
  duckdb_table_function fn = duckdb_create_table_function();
  duckdb_table_function_set_name(fn, "sluice_chunks");
  duckdb_logical_type bigint = duckdb_create_logical_type(DUCKDB_TYPE_BIGINT);
  duckdb_table_function_add_parameter(fn, bigint);
  duckdb_destroy_logical_type(&bigint);
  duckdb_table_function_set_bind(fn, ChunksBind);
  duckdb_table_function_set_init(fn, ChunksInit);
  duckdb_table_function_set_function(fn, ChunksScan);
  const bool ok = duckdb_register_table_function(con, fn) == DuckDBSuccess;
  duckdb_destroy_table_function(&fn);
  return ok ? Status::OK() : Status::Internal("DuckDB: cannot register sluice_chunks");
}

}  // namespace

Status DuckError(duckdb_error_type type, const char* message) {
  std::string text = FirstLine(message);
  switch (type) {
    case DUCKDB_ERROR_IO:
    case DUCKDB_ERROR_NETWORK:
    case DUCKDB_ERROR_HTTP: return Status::IOError(std::move(text));
    case DUCKDB_ERROR_OUT_OF_MEMORY: return Status::ResourceExhausted(std::move(text));
    case DUCKDB_ERROR_INTERRUPT: return Status::Cancelled(std::move(text));
    case DUCKDB_ERROR_INVALID_INPUT:
    case DUCKDB_ERROR_SERIALIZATION: return Status::Corruption(std::move(text));
    case DUCKDB_ERROR_INTERNAL:
    case DUCKDB_ERROR_FATAL: return Status::Internal(std::move(text));
    default: return Status::InvalidArgument(std::move(text));
  }
}

std::string QuoteIdentifier(std::string_view name) { return Quote(name, '"'); }
std::string QuoteLiteral(std::string_view text) { return Quote(text, '\''); }

// ---- DuckChunk --------------------------------------------------------------

DuckChunk& DuckChunk::operator=(DuckChunk&& other) noexcept {
  if (this != &other) {
    if (chunk_ != nullptr) duckdb_destroy_data_chunk(&chunk_);
    chunk_ = std::exchange(other.chunk_, nullptr);
  }
  return *this;
}

DuckChunk::~DuckChunk() {
  if (chunk_ != nullptr) duckdb_destroy_data_chunk(&chunk_);
}

bool DuckChunk::IsNull(size_t col, size_t row) const {
  return !duckdb_validity_row_is_valid(duckdb_vector_get_validity(vector(col)), row);
}

int64_t DuckChunk::Int64At(size_t col, size_t row) const {
  return static_cast<const int64_t*>(duckdb_vector_get_data(vector(col)))[row];
}

double DuckChunk::DoubleAt(size_t col, size_t row) const {
  return static_cast<const double*>(duckdb_vector_get_data(vector(col)))[row];
}

std::string_view DuckChunk::StringAt(size_t col, size_t row) const {
  return DuckString(static_cast<duckdb_string_t*>(duckdb_vector_get_data(vector(col))) + row);
}

// ---- DuckResult -------------------------------------------------------------

DuckResult::DuckResult(DuckResult&& other) noexcept : result_(other.result_), valid_(other.valid_) {
  other.valid_ = false;
}

DuckResult& DuckResult::operator=(DuckResult&& other) noexcept {
  if (this != &other) {
    if (valid_) duckdb_destroy_result(&result_);
    result_ = other.result_;
    valid_ = std::exchange(other.valid_, false);
  }
  return *this;
}

DuckResult::~DuckResult() {
  if (valid_) duckdb_destroy_result(&result_);
}

size_t DuckResult::column_count() { return duckdb_column_count(&result_); }

std::string DuckResult::column_name(size_t col) {
  const char* name = duckdb_column_name(&result_, col);
  return name != nullptr ? name : "";
}

duckdb_logical_type DuckResult::column_logical_type(size_t col) { return duckdb_column_logical_type(&result_, col); }

Result<DuckChunk> DuckResult::Next() {
  DuckChunk chunk(duckdb_fetch_chunk(result_));
  if (!chunk) {
    // The end, or a failure while computing the next chunk.
    const char* error = duckdb_result_error(&result_);
    if (error != nullptr) return DuckError(duckdb_result_error_type(&result_), error);
  }
  return chunk;
}

// ---- DuckStatement ----------------------------------------------------------

DuckStatement& DuckStatement::operator=(DuckStatement&& other) noexcept {
  if (this != &other) {
    if (stmt_ != nullptr) duckdb_destroy_prepare(&stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

DuckStatement::~DuckStatement() {
  if (stmt_ != nullptr) duckdb_destroy_prepare(&stmt_);
}

Status DuckStatement::Bind(size_t index, const SqlParam& value) {
  const idx_t param = index + 1;  // DuckDB numbers parameters from 1
  duckdb_state state = DuckDBError;
  if (std::holds_alternative<std::monostate>(value)) {
    state = duckdb_bind_null(stmt_, param);
  } else if (const auto* i = std::get_if<int64_t>(&value)) {
    state = duckdb_bind_int64(stmt_, param, *i);
  } else if (const auto* d = std::get_if<double>(&value)) {
    state = duckdb_bind_double(stmt_, param, *d);
  } else {
    const std::string& s = std::get<std::string>(value);
    state = duckdb_bind_varchar_length(stmt_, param, s.data(), s.size());
  }
  if (state != DuckDBSuccess) {
    return Status::InvalidArgument("cannot bind parameter " + std::to_string(param) + ": " +
                                   FirstLine(duckdb_prepare_error(stmt_)));
  }
  return Status::OK();
}

Status DuckStatement::BindAll(const std::vector<SqlParam>& values, size_t first) {
  for (size_t i = 0; i < values.size(); ++i) RETURN_IF_ERROR(Bind(first + i, values[i]));
  return Status::OK();
}

Result<DuckResult> DuckStatement::Query() { return Run(/*stream=*/false); }
Result<DuckResult> DuckStatement::Stream() { return Run(/*stream=*/true); }

Result<DuckResult> DuckStatement::Run(bool stream) {
  DuckResult result;
  const duckdb_state state = stream ? duckdb_execute_prepared_streaming(stmt_, &result.result_)
                                    : duckdb_execute_prepared(stmt_, &result.result_);
  result.valid_ = true;  // destroyed on every path, as the API asks
  if (state != DuckDBSuccess) {
    return DuckError(duckdb_result_error_type(&result.result_), duckdb_result_error(&result.result_));
  }
  return result;
}

// ---- DuckDb -----------------------------------------------------------------

struct DuckDb::Database {
  duckdb_database handle = nullptr;
  ~Database() {
    if (handle != nullptr) duckdb_close(&handle);
  }
};

Result<std::unique_ptr<DuckDb>> DuckDb::Open(const DuckDbOptions& options) {
  auto database = std::make_shared<Database>();
  duckdb_config config = nullptr;
  if (duckdb_create_config(&config) != DuckDBSuccess) return Status::Internal("DuckDB: cannot create a configuration");
  std::string failed;
  const std::string threads = std::to_string(options.threads);
  const std::pair<const char*, const std::string*> settings[] = {
      {"threads", &threads}, {"memory_limit", &options.memory_limit}, {"temp_directory", &options.temp_directory}};
  for (const auto& [name, value] : settings) {
    if (!value->empty() && duckdb_set_config(config, name, value->c_str()) != DuckDBSuccess) {
      failed = std::string(name) + " = '" + *value + "'";
      break;
    }
  }
  char* error = nullptr;
  const duckdb_state opened = failed.empty() ? duckdb_open_ext(nullptr, &database->handle, config, &error) : DuckDBError;
  duckdb_destroy_config(&config);
  if (!failed.empty()) return Status::InvalidArgument("DuckDB: cannot set " + failed);
  if (opened != DuckDBSuccess) {
    Status st = Status::Internal("DuckDB: cannot open an in-memory database: " + FirstLine(error));
    duckdb_free(error);
    return st;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<DuckDb> db, Connect(std::move(database)));
  RETURN_IF_ERROR(RegisterSluiceFunctions(db->con_));  // the database's, for every connection
  return db;
}

Result<std::unique_ptr<DuckDb>> DuckDb::Connect(std::shared_ptr<Database> database) {
  std::unique_ptr<DuckDb> db(new DuckDb());
  db->db_ = std::move(database);
  if (duckdb_connect(db->db_->handle, &db->con_) != DuckDBSuccess) return Status::Internal("DuckDB: cannot connect");
  RETURN_IF_ERROR(db->Execute("SET TimeZone = 'UTC'"));
  return db;
}

DuckDb::~DuckDb() {
  if (con_ != nullptr) duckdb_disconnect(&con_);  // then db_: the database closes with its last connection
}

Status DuckDb::Execute(const std::string& sql) {
  duckdb_result result;
  const duckdb_state state = duckdb_query(con_, sql.c_str(), &result);
  Status st;
  if (state != DuckDBSuccess) st = DuckError(duckdb_result_error_type(&result), duckdb_result_error(&result));
  duckdb_destroy_result(&result);
  return st;
}

Result<DuckStatement> DuckDb::Prepare(const std::string& sql) {
  duckdb_prepared_statement stmt = nullptr;
  DuckStatement statement(nullptr);
  const duckdb_state state = duckdb_prepare(con_, sql.c_str(), &stmt);
  statement.stmt_ = stmt;  // destroyed on every path, as the API asks
  if (state != DuckDBSuccess) return DuckError(DUCKDB_ERROR_INVALID, duckdb_prepare_error(stmt));
  return statement;
}

// ---- DuckDbPool -------------------------------------------------------------

Result<PooledDuckDb> DuckDbPool::Take(DuckDbPool* pool, const DuckDbOptions& options) {
  if (pool != nullptr) {
    std::lock_guard<std::mutex> lock(pool->mu_);
    for (auto it = pool->idle_.begin(); it != pool->idle_.end(); ++it) {
      if (it->first == options) {
        PooledDuckDb db(it->second.release(), DuckDbRelease{pool, options});
        pool->idle_.erase(it);
        return db;
      }
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<DuckDb> db, DuckDb::Open(options));
  if (pool != nullptr) {
    std::lock_guard<std::mutex> lock(pool->mu_);
    std::erase_if(pool->opened_, [](const auto& entry) { return entry.second.expired(); });
    pool->opened_.emplace_back(options, db->db_);
  }
  return PooledDuckDb(db.release(), DuckDbRelease{pool, options});
}

Result<PooledDuckDb> DuckDbPool::Share(DuckDbPool* pool, const DuckDbOptions& options) {
  if (pool != nullptr) {
    std::shared_ptr<DuckDb::Database> database;
    {
      std::lock_guard<std::mutex> lock(pool->mu_);
      for (const auto& [opened_with, weak] : pool->opened_) {
        if (opened_with == options && (database = weak.lock()) != nullptr) break;
      }
    }
    if (database != nullptr) {
      ASSIGN_OR_RETURN(std::unique_ptr<DuckDb> db, DuckDb::Connect(std::move(database)));
      return PooledDuckDb(db.release(), DuckDbRelease{nullptr, options});  // closes the connection only
    }
  }
  return Take(pool, options);
}

void DuckDbPool::Close(PooledDuckDb db) {
  db.get_deleter().pool = nullptr;
  db.reset();
}

size_t DuckDbPool::idle() {
  std::lock_guard<std::mutex> lock(mu_);
  return idle_.size();
}

void DuckDbPool::LeaveIdleToExit() {
  static std::mutex* const left_mu = new std::mutex;
  static auto* const left = new std::vector<std::unique_ptr<DuckDb>>;  // never destroyed
  std::lock_guard<std::mutex> lock(mu_);
  std::lock_guard<std::mutex> left_lock(*left_mu);
  for (auto& [options, db] : idle_) left->push_back(std::move(db));
  idle_.clear();
}

void DuckDbPool::GiveBack(std::unique_ptr<DuckDb> db, const DuckDbOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.emplace_back(options, std::move(db));
}

void DuckDbRelease::operator()(DuckDb* db) const {
  std::unique_ptr<DuckDb> owned(db);
  if (pool != nullptr) pool->GiveBack(std::move(owned), options);
}

Status RegisterSluiceFunctions(duckdb_connection con) {
  duckdb_scalar_function_set set = duckdb_create_scalar_function_set("sluice_bucket");
  duckdb_logical_type bigint = duckdb_create_logical_type(DUCKDB_TYPE_BIGINT);
  bool ok = true;
  for (const duckdb_type value_type :
       {DUCKDB_TYPE_BIGINT, DUCKDB_TYPE_FLOAT, DUCKDB_TYPE_DOUBLE, DUCKDB_TYPE_BOOLEAN, DUCKDB_TYPE_VARCHAR}) {
    duckdb_scalar_function fn = duckdb_create_scalar_function();
    duckdb_scalar_function_set_name(fn, "sluice_bucket");
    duckdb_logical_type value = duckdb_create_logical_type(value_type);
    duckdb_scalar_function_add_parameter(fn, value);
    duckdb_scalar_function_add_parameter(fn, bigint);
    duckdb_scalar_function_set_return_type(fn, bigint);
    duckdb_scalar_function_set_special_handling(fn);  // NULL values have a bucket too
    duckdb_scalar_function_set_function(fn, SluiceBucket);
    ok = ok && duckdb_add_scalar_function_to_set(set, fn) == DuckDBSuccess;
    duckdb_destroy_logical_type(&value);
    duckdb_destroy_scalar_function(&fn);
  }
  ok = ok && duckdb_register_scalar_function_set(con, set) == DuckDBSuccess;
  duckdb_destroy_logical_type(&bigint);
  duckdb_destroy_scalar_function_set(&set);
  if (!ok) return Status::Internal("DuckDB: cannot register sluice_bucket");
  return RegisterChunksFunction(con);
}

// ---- DuckChunkList ----------------------------------------------------------

DuckChunkList::DuckChunkList(std::vector<std::string> names, const std::vector<duckdb_type>& types)
    : id_([this] {
        ChunkLists& lists = LiveChunkLists();
        std::lock_guard<std::mutex> lock(lists.mu);
        lists.by_id.emplace(lists.next_id, this);
        return lists.next_id++;
      }()),
      names_(std::move(names)) {
  for (const duckdb_type t : types) logical_types_.push_back(duckdb_create_logical_type(t));
}

DuckChunkList::~DuckChunkList() {
  Clear();
  for (duckdb_logical_type& t : logical_types_) duckdb_destroy_logical_type(&t);
  ChunkLists& lists = LiveChunkLists();
  std::lock_guard<std::mutex> lock(lists.mu);
  lists.by_id.erase(id_);
}

const DuckChunkList* DuckChunkList::Find(int64_t id) {
  ChunkLists& lists = LiveChunkLists();
  std::lock_guard<std::mutex> lock(lists.mu);
  const auto it = lists.by_id.find(id);
  return it == lists.by_id.end() ? nullptr : it->second;
}

duckdb_data_chunk DuckChunkList::Add() {
  chunks_.push_back(duckdb_create_data_chunk(logical_types_.data(), logical_types_.size()));
  return chunks_.back();
}

void DuckChunkList::Clear() {
  for (duckdb_data_chunk& chunk : chunks_) duckdb_destroy_data_chunk(&chunk);
  chunks_.clear();
}

}  // namespace sluice
