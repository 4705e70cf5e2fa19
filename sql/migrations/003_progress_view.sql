-- The per-job progress shape served by GET /api/v1/training-jobs/{id}/progress.
BEGIN;
SET LOCAL client_min_messages = warning;

CREATE OR REPLACE VIEW training_progress AS
SELECT
    j.id                                          AS job_id,
    j.status,
    j.progress                                    AS percentage,
    j.current_stage                               AS current_step,
    j.step_number,
    j.total_steps,
    j.step_percentage,
    j.step_details,
    j.started_at,
    j.updated_at,
    j.estimated_completion,
    j.eta_seconds,
    j.current_episode                             AS current_iteration,
    j.total_episodes                              AS total_iterations,
    j.best_score,
    j.current_score,
    j.best_params,
    j.status IN ('succeeded', 'failed', 'stopped') AS is_complete,
    j.error_message,
    j.candles_processed,
    j.total_candles,
    j.backtest_stage,
    j.version
FROM training_jobs j;

INSERT INTO schema_migrations (name) VALUES ('003_progress_view') ON CONFLICT (name) DO NOTHING;

COMMIT;
